"""16 differential (issue 15): the same STOMP frame sequences against ActiveMQ 5.17 (Debian's
package, started by bench/activemq.sh on loopback from a config it writes into a temp dir) and
against tandemd with no config file, comparing what each delivers and refuses.

Every scenario returns a plain value (commands, bodies, chosen headers). They must be equal,
except in the scenarios listed in KNOWN_DIFFERENCES, where each broker must give exactly its
own documented answer (docs/compatibility.md, "Intentional differences"), so a change on
either side still fails the test. Skips (exit 77) when ActiveMQ or Java is not installed or
ActiveMQ does not start.

Run alone: /usr/bin/python3 16_activemq_diff.py build/broker/tandemd
"""
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from tandem_test import Raw, free_port, new_broker, run, skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACTIVEMQ_SH = os.path.join(ROOT, "bench", "activemq.sh")


# Issue 16: queues "prio.>" deliver by priority (prioritizedMessages); queues "redeliver.>" redeliver a NACKed message after 1100 ms, then 2200 ms, then
# dead-letter it; every other queue keeps "NACK dead-letters at once" (fallbackToDeadLetter).
# ActiveMQ refuses to start with a delay of 1000 ms or less (RedeliveryPlugin checks it
# against its scheduler's period); Tandem takes any delay.
AMQ_REDELIVERY_XML = """<plugins>
      <redeliveryPlugin fallbackToDeadLetter="true" sendToDlqIfMaxRetriesExceeded="true">
        <redeliveryPolicyMap><redeliveryPolicyMap><redeliveryPolicyEntries>
          <redeliveryPolicy queue="redeliver.>" maximumRedeliveries="2" initialRedeliveryDelay="1100"
                            redeliveryDelay="1100" useExponentialBackOff="true" backOffMultiplier="2"/>
        </redeliveryPolicyEntries></redeliveryPolicyMap></redeliveryPolicyMap>
      </redeliveryPlugin>
    </plugins>
    <destinationPolicy><policyMap><policyEntries>
      <policyEntry queue="prio.>" prioritizedMessages="true"/>
    </policyEntries></policyMap></destinationPolicy>"""
REDELIVERY_CONFIG = {"allow_anonymous": True, "destination_policies": [
    {"queue": "prio.>", "prioritized_messages": True},
    {"queue": "redeliver.>", "redelivery": {"maximum_redeliveries": 2, "initial_redelivery_delay_ms": 1100,
                                            "redelivery_delay_ms": 1100, "use_exponential_back_off": True,
                                            "back_off_multiplier": 2.0}}]}


class ActiveMQ:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tandem-amq-")
        self.port = None

    def start(self):
        if not os.path.exists("/usr/share/activemq/bin/activemq.jar") or not shutil.which("java"):
            skip("ActiveMQ 5.17 is not installed (apt-get install activemq)")
        self.port = free_port()
        # The redelivery policy of the redelivery scenarios (issue 16): ActiveMQ's
        # redeliveryPlugin, the same settings as REDELIVERY_CONFIG gives tandemd.
        env = dict(os.environ, ACTIVEMQ_HEAP="256M", AMQ_SCHEDULER="1", AMQ_BROKER_XML=AMQ_REDELIVERY_XML)
        out = subprocess.run([ACTIVEMQ_SH, "start", self.dir, str(self.port)], capture_output=True, text=True,
                             timeout=180, env=env)
        if out.returncode != 0:
            skip(f"ActiveMQ did not start: {out.stderr[-500:]}")
        return self

    def stop(self):
        subprocess.run([ACTIVEMQ_SH, "stop", self.dir, "--kill"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def connect(b, version="1.2", extra=None):
    r = Raw(b, timeout=10)
    h = {"accept-version": version, "host": "localhost", "login": "guest", "passcode": "guest"}
    h.update(extra or {})
    r.frame("CONNECT", h)
    f = r.read_frame()
    assert f[0] == "CONNECTED", f
    return r, f[1]


def frames(r, quiet=1.0):
    """Every frame that arrived (before a receipt `sent` or `subscribed` waited for, or until
    none has for `quiet` seconds)."""
    out, r.early = getattr(r, "early", []), []
    while True:
        try:
            f = r.read_frame(timeout=quiet)
        except AssertionError:
            return out
        if f is None:
            return out
        out.append(f)


def wait_receipt(r, rid):
    """Reads up to the RECEIPT `rid`; MESSAGE frames before it are kept for frames()."""
    if not hasattr(r, "early"):
        r.early = []
    while True:
        f = r.read_frame()
        assert f is not None and f[0] in ("RECEIPT", "MESSAGE"), f
        if f[0] == "RECEIPT" and f[1].get("receipt-id") == rid:
            return
        r.early.append(f)


def subscribed(r, headers):
    h = dict(headers)
    h["receipt"] = "sub-" + h["id"]
    r.frame("SUBSCRIBE", h)
    wait_receipt(r, h["receipt"])


def sent(r, dest, body, headers=None):
    h = {"destination": dest, "receipt": "snd"}
    h.update(headers or {})
    r.frame("SEND", h, body)
    wait_receipt(r, "snd")


def bodies(fs):
    return [f[2].decode() for f in fs if f[0] == "MESSAGE"]


# ---- scenarios: each takes (broker, unique suffix) and returns what it saw -----------------

def login_is_accepted(b, u):
    _, h = connect(b, extra={"login": "someone", "passcode": "whatever"})
    return "CONNECTED"


def heart_beat_negotiation(b, u):
    _, h = connect(b, extra={"heart-beat": "300,400"})
    return h.get("heart-beat")


def stomp_1_0_connected_heart_beat(b, u):
    r = Raw(b, timeout=10)
    r.frame("CONNECT", {"login": "guest", "passcode": "guest"})
    return r.read_frame()[1].get("heart-beat")


def stomp_1_0_with_heart_beat_asked(b, u):
    _, h = connect(b, "1.0", {"heart-beat": "300,400"})
    return h.get("heart-beat")


def silent_client_is_dropped(b, u):
    """A client that promised a heart-beat every 500 ms and then says nothing is dropped
    (after the period times the grace, 1.5 in both); one that promised none is kept."""
    promised, h = connect(b, extra={"heart-beat": "500,0"})
    t0 = time.monotonic()
    try:
        promised.read_eof(timeout=6)
        dropped_after = time.monotonic() - t0
    except AssertionError:
        dropped_after = None
    quiet, _ = connect(b, extra={"heart-beat": "0,0"})
    time.sleep(2)
    sent(quiet, f"/queue/still-here-{u}", "x")  # raises if the broker closed it
    return h.get("heart-beat"), dropped_after is not None and 0.5 <= dropped_after <= 4.0


def frame_over_the_limit(b, u):
    """A SEND whose content-length is one octet over 100 MiB, the frame limit both brokers
    are configured with (Tandem's default max_frame_bytes, ActiveMQ's maxFrameSize in
    bench/activemq.sh): refused from the header alone, then the connection closes, and
    nothing reaches the queue."""
    r, _ = connect(b)
    r.send(f"SEND\ndestination:/queue/big-{u}\ncontent-length:{100 * 1024 * 1024 + 1}\nreceipt:big\n\n".encode()
           + b"x" * 65536)
    first = r.read_frame()
    try:
        r.read_eof(timeout=10)
        closed = True
    except (AssertionError, OSError):
        closed = False
    c, _ = connect(b)
    subscribed(c, {"id": "s", "destination": f"/queue/big-{u}", "ack": "auto"})
    return (first[0] if first else "closed"), closed, len(frames(c))


def jms_headers_round_trip(b, u):
    r, _ = connect(b)
    q = f"/queue/jms.{u}"
    subscribed(r, {"destination": q, "id": "s"})
    before = int(time.time() * 1000)
    sent(r, q, "a", {"correlation-id": "c-1", "reply-to": "/queue/answers", "type": "order", "priority": "7",
                     "persistent": "true", "expires": str(before + 3600_000), "custom": "x"})
    [m] = [f for f in frames(r) if f[0] == "MESSAGE"]
    h = m[1]
    stamped = before - 1000 <= int(h.get("timestamp", "0")) <= int(time.time() * 1000) + 1000
    return {k: h.get(k) for k in ("correlation-id", "reply-to", "type", "priority", "persistent", "custom")}, stamped


def sender_timestamp_is_kept(b, u):
    r, _ = connect(b)
    q = f"/queue/ts.{u}"
    subscribed(r, {"destination": q, "id": "s"})
    sent(r, q, "a", {"timestamp": "12345"})
    return [f[1].get("timestamp") for f in frames(r) if f[0] == "MESSAGE"]


def nack_is_a_poison_ack(b, u):
    r, _ = connect(b)
    q = f"/queue/nack.{u}"
    subscribed(r, {"destination": q, "id": "s", "ack": "client-individual"})
    sent(r, q, "bad", {"persistent": "true", "marker": u})
    [m] = [f for f in frames(r) if f[0] == "MESSAGE"]
    r.frame("NACK", {"id": m[1]["ack"], "receipt": "n"})
    after = frames(r)
    d, _ = connect(b)
    subscribed(d, {"destination": "/queue/ActiveMQ.DLQ", "id": "d", "selector": f"marker = '{u}'"})
    dead = [(f[2].decode(), f[1].get("original-destination")) for f in frames(d) if f[0] == "MESSAGE"]
    return [f[0] for f in after], dead


def nack_in_client_mode(b, u):
    r, _ = connect(b)
    q = f"/queue/cnack.{u}"
    subscribed(r, {"destination": q, "id": "s", "ack": "client"})
    for i in range(3):
        sent(r, q, str(i), {"persistent": "true", "marker": u})
    ms = [f for f in frames(r) if f[0] == "MESSAGE"]
    r.frame("NACK", {"id": ms[1][1]["ack"], "receipt": "n"})
    frames(r)
    d, _ = connect(b)
    subscribed(d, {"destination": "/queue/ActiveMQ.DLQ", "id": "d", "selector": f"marker = '{u}'"})
    return sorted(bodies(frames(d)))


def nack_of_a_non_persistent_message(b, u):
    r, _ = connect(b)
    q = f"/queue/npnack.{u}"
    subscribed(r, {"destination": q, "id": "s", "ack": "client-individual"})
    sent(r, q, "np", {"marker": u})
    [m] = [f for f in frames(r) if f[0] == "MESSAGE"]
    r.frame("NACK", {"id": m[1]["ack"], "receipt": "n"})
    frames(r)
    d, _ = connect(b)
    subscribed(d, {"destination": "/queue/ActiveMQ.DLQ", "id": "d", "selector": f"marker = '{u}'"})
    return bodies(frames(d))


def consumer_loss_counts_toward_redelivery(b, u):
    q = f"/queue/loss.{u}"
    p, _ = connect(b)
    sent(p, q, "m", {"persistent": "true", "marker": u})
    deliveries = 0
    for _ in range(9):
        c, _ = connect(b)
        c.frame("SUBSCRIBE", {"destination": q, "id": "s", "ack": "client-individual"})
        got = [f for f in frames(c, quiet=1.0) if f[0] == "MESSAGE"]
        c.close()
        if not got:
            break
        deliveries += 1
        time.sleep(0.2)  # let the broker see the close before the next consumer
    d, _ = connect(b)
    subscribed(d, {"destination": "/queue/ActiveMQ.DLQ", "id": "d", "selector": f"marker = '{u}'"})
    return deliveries, bodies(frames(d))


def nack_redelivered_with_back_off(b, u):
    """Issue 16: each NACK brings the message back after its delay (1.1 s, then 2.2 s,
    with `redelivered:true`), not before and not much later, while a message sent behind
    it is delivered at once; the third NACK dead-letters it."""
    r, _ = connect(b)
    q = f"/queue/redeliver.{u}"
    subscribed(r, {"destination": q, "id": "s", "ack": "client-individual"})
    sent(r, q, "m", {"persistent": "true", "marker": u})
    [m] = [f for f in frames(r, quiet=0.3) if f[0] == "MESSAGE"]
    seen = [(m[2].decode(), m[1].get("redelivered"))]
    timing = []
    for delay in (1.1, 2.2, None):
        r.frame("NACK", {"id": m[1]["ack"]})
        t0 = time.monotonic()
        if delay is None:
            break
        if delay == 1.1:
            sent(r, q, "behind", {"persistent": "true", "marker": u})
        while True:  # up to the message's return; "behind" comes first
            m = r.early.pop(0) if r.early else r.read_frame(timeout=10)
            assert m is not None and m[0] == "MESSAGE", m
            seen.append((m[2].decode(), m[1].get("redelivered")))
            if m[2] == b"m":
                break
        timing.append(delay - 0.05 <= time.monotonic() - t0 <= delay + 1.5)
    d, _ = connect(b)
    subscribed(d, {"destination": "/queue/ActiveMQ.DLQ", "id": "d", "selector": f"marker = '{u}'"})
    return seen, timing, bodies(frames(d))


nack_redelivered_with_back_off.tandem_config = REDELIVERY_CONFIG


def priority_order(b, u):
    """Issue 16: pending messages of a prioritized queue go out 9 first, FIFO within a
    priority; a queue without the policy stays FIFO."""
    r, _ = connect(b)
    sends = [("2", "a"), ("9", "b"), (None, "c"), ("2", "d"), ("9", "e"), ("0", "f"), ("5", "g")]
    out = []
    for q in (f"/queue/prio.{u}", f"/queue/fifo.{u}"):
        for prio, tag in sends:
            sent(r, q, (prio or "-") + tag, {"persistent": "true", **({"priority": prio} if prio else {})})
        subscribed(r, {"destination": q, "id": q})
        out.append(bodies(frames(r)))
    return out


priority_order.tandem_config = REDELIVERY_CONFIG


def scheduled_delivery(b, u):
    """Issue 16: AMQ_SCHEDULED_DELAY holds a message back; AMQ_SCHEDULED_PERIOD with
    AMQ_SCHEDULED_REPEAT delivers repeat + 1 copies, each its own message; every fired
    message carries scheduledJobId and none of the AMQ_SCHEDULED_* headers."""
    r, _ = connect(b)
    q = f"/queue/sched.{u}"
    subscribed(r, {"destination": q, "id": "s"})
    t0 = time.monotonic()
    sent(r, q, "delayed", {"AMQ_SCHEDULED_DELAY": "1500"})
    sent(r, q, "periodic", {"AMQ_SCHEDULED_PERIOD": "300", "AMQ_SCHEDULED_REPEAT": "2"})
    got = []
    while len(got) < 4:
        m = r.early.pop(0) if r.early else r.read_frame(timeout=10)
        assert m is not None and m[0] == "MESSAGE", m
        got.append((m[2].decode(), time.monotonic() - t0, m[1]))
    late = [f for f in frames(r, quiet=0.8) if f[0] == "MESSAGE"]
    return ([body for body, _, _ in got],
            all(at >= 1.45 for body, at, _ in got if body == "delayed"),
            all("scheduledJobId" in h and not any(k.startswith("AMQ_SCHEDULED") for k in h) for _, _, h in got),
            len({h["message-id"] for _, _, h in got}),
            len({h["scheduledJobId"] for body, _, h in got if body == "periodic"}),
            len(late))


def scheduled_in_transaction(b, u):
    """Issue 16: a scheduled SEND inside a transaction is scheduled at COMMIT (its delay
    counts from the COMMIT) and dropped by ABORT (ActiveMQ's SchedulerBroker, afterCommit)."""
    r, _ = connect(b)
    q = f"/queue/schedtx.{u}"
    subscribed(r, {"destination": q, "id": "s"})
    r.frame("BEGIN", {"transaction": "gone"})
    sent(r, q, "aborted", {"transaction": "gone", "AMQ_SCHEDULED_DELAY": "200"})
    r.frame("ABORT", {"transaction": "gone", "receipt": "ra"})
    wait_receipt(r, "ra")
    r.frame("BEGIN", {"transaction": "tx"})
    sent(r, q, "committed", {"transaction": "tx", "AMQ_SCHEDULED_DELAY": "1200"})
    before = [f[0] for f in frames(r, quiet=1.5)]  # longer than the delay: nothing before COMMIT
    r.frame("COMMIT", {"transaction": "tx", "receipt": "rc"})
    wait_receipt(r, "rc")
    t0 = time.monotonic()
    m = r.early.pop(0) if r.early else r.read_frame(timeout=10)
    at = time.monotonic() - t0
    late = [f[0] for f in frames(r, quiet=0.8)]
    return before, m[0], m[2].decode(), at >= 1.0, "scheduledJobId" in m[1], late


MANAGEMENT = "/topic/ActiveMQ.Scheduler.Management"


def scheduler_request(r, headers, rid):
    """A SEND to ActiveMQ.Scheduler.Management; returns the frames that came for it (up to
    its RECEIPT or ERROR, and what follows within a second)."""
    r.frame("SEND", dict(headers, destination=MANAGEMENT, receipt=rid))
    got = list(getattr(r, "early", []))
    r.early = []
    while not any(f[0] in ("RECEIPT", "ERROR") for f in got):
        f = r.read_frame()
        assert f is not None, got
        got.append(f)
    return got + frames(r)


def scheduled_jobs(r, u, rid, extra=None):
    """BROWSE into /queue/smr.<u> (which `r` subscribes to): the copies of this scenario's
    jobs as (body, chosen headers), in the order they came."""
    got = scheduler_request(r, dict({"AMQ_SCHEDULER_ACTION": "BROWSE", "reply-to": f"/queue/smr.{u}"}, **(extra or {})),
                            rid)
    return [(f[2].decode(), f[1].get("scheduledJobId"),
             {k: f[1].get(k, "").replace(u, "U") for k in ("type", "original-destination", "AMQ_SCHEDULED_DELAY",
                                                           "custom", "persistent")})
            for f in got if f[0] == "MESSAGE" and f[1].get("original-destination") == f"/queue/smw.{u}"]


def scheduler_management(b, u):
    """Issue 16: ActiveMQ.Scheduler.Management. BROWSE copies the pending jobs to reply-to
    in next-firing order (all, or those in ACTION_START_TIME..ACTION_END_TIME), marked
    type:Advisory with original-destination and scheduledJobId; REMOVE takes one job,
    REMOVEALL a time range or the rest; a subscriber of the management topic sees none of
    the requests."""
    r, _ = connect(b)
    subscribed(r, {"destination": MANAGEMENT, "id": "m"})
    subscribed(r, {"destination": f"/queue/smr.{u}", "id": "jobs"})
    now = int(time.time() * 1000)
    for i, delay in enumerate((600_000, 300_000, 900_000)):
        sent(r, f"/queue/smw.{u}", f"job{i}", {"AMQ_SCHEDULED_DELAY": str(delay), "custom": str(i),
                                               "persistent": "true"})
    listed = scheduled_jobs(r, u, "b1")
    jobs = {body: job for body, job, _ in listed}
    ranged = scheduled_jobs(r, u, "b2", {"ACTION_START_TIME": str(now + 450_000), "ACTION_END_TIME": str(now + 750_000)})
    scheduler_request(r, {"AMQ_SCHEDULER_ACTION": "REMOVE", "scheduledJobId": jobs["job1"]}, "r1")
    after_remove = scheduled_jobs(r, u, "b3")
    scheduler_request(r, {"AMQ_SCHEDULER_ACTION": "REMOVEALL", "ACTION_START_TIME": str(now + 800_000),
                          "ACTION_END_TIME": str(now + 1_000_000)}, "r2")
    after_range = scheduled_jobs(r, u, "b4")
    scheduler_request(r, {"AMQ_SCHEDULER_ACTION": "REMOVEALL"}, "r3")
    after_all = scheduled_jobs(r, u, "b5")
    to_topic = [f for f in frames(r) if f[0] == "MESSAGE" and f[1].get("subscription") == "m"]
    return ([(body, headers) for body, _, headers in listed], len(set(jobs.values())),
            [body for body, _, _ in ranged], [body for body, _, _ in after_remove],
            [body for body, _, _ in after_range], after_all, len(to_topic))


def scheduler_management_misnamed_range(b, u):
    """Issue 16: a REMOVEALL whose range is given as AMQ_SCHEDULER_ACTION_START_TIME / _END_TIME
    (the Java constants' names, not the headers): ActiveMQ ignores them and removes every
    job; Tandem refuses the request and removes nothing."""
    r, _ = connect(b)
    subscribed(r, {"destination": f"/queue/smr.{u}", "id": "jobs"})
    sent(r, f"/queue/smw.{u}", "kept?", {"AMQ_SCHEDULED_DELAY": "600000"})
    far = int(time.time() * 1000) + 3_600_000_000
    answer = scheduler_request(r, {"AMQ_SCHEDULER_ACTION": "REMOVEALL", "AMQ_SCHEDULER_ACTION_START_TIME": str(far),
                                   "AMQ_SCHEDULER_ACTION_END_TIME": str(far + 1)}, "r")
    c, _ = connect(b)
    subscribed(c, {"destination": f"/queue/smr.{u}", "id": "jobs"})
    left = scheduled_jobs(c, u, "b")
    scheduler_request(c, {"AMQ_SCHEDULER_ACTION": "REMOVEALL"}, "clean")  # leave ActiveMQ's scheduler empty
    return [f[0] for f in answer if f[0] != "MESSAGE"], [body for body, _, _ in left]


def advisory_replay(b, u):
    """Issue 16: a new subscriber of an advisory topic is told what exists: one advisory per
    consumer of the queue (with the consumer count of now), one per existing queue and
    topic. The bodies differ (ActiveMQ's OpenWire commands as JSON, Tandem's own JSON):
    compared are the count, the consumerCount header and whether the names appear."""
    a, _ = connect(b)
    subscribed(a, {"destination": f"/queue/adv.{u}", "id": "1"})
    c, _ = connect(b)
    subscribed(c, {"destination": f"/queue/adv.{u}", "id": "2"})
    sent(c, f"/topic/advt.{u}", "x")
    w, _ = connect(b)
    subscribed(w, {"destination": f"/topic/ActiveMQ.Advisory.Consumer.Queue.adv.{u}", "id": "c"})
    consumers = [f for f in frames(w) if f[0] == "MESSAGE"]
    subscribed(w, {"destination": "/topic/ActiveMQ.Advisory.Queue", "id": "q"})
    subscribed(w, {"destination": "/topic/ActiveMQ.Advisory.Topic", "id": "t"})
    destinations = [f for f in frames(w) if f[0] == "MESSAGE"]
    named = lambda name: any(name in f[2].decode() for f in destinations)  # noqa: E731
    return (len(consumers), [f[1].get("consumerCount") for f in consumers],
            [f[1]["destination"].replace(u, "U") for f in consumers], named(f"adv.{u}"), named(f"advt.{u}"))


def queue_selector(b, u):
    r, _ = connect(b)
    q = f"/queue/sel.{u}"
    for i, color in enumerate(["red", "blue", "red", "green", "red"]):
        sent(r, q, f"{color}{i}", {"color": color})
    subscribed(r, {"destination": q, "id": "red", "selector": "color = 'red'"})
    reds = bodies(frames(r))
    subscribed(r, {"destination": q, "id": "rest"})
    return reds, bodies(frames(r))


def selector_on_jms_headers_and_numbers(b, u):
    r, _ = connect(b)
    t = f"/topic/prices.{u}"
    subscribed(r, {"destination": t, "id": "s", "selector": "JMSPriority > 5 AND price > 10.0"})
    sent(r, t, "cheap", {"priority": "9", "price": "3.5"})
    sent(r, t, "low", {"priority": "1", "price": "30"})
    sent(r, t, "hit", {"priority": "9", "price": "10.5"})
    sent(r, t, "int", {"priority": "8", "price": "11"})
    return bodies(frames(r))


def invalid_selector(b, u):
    r, _ = connect(b)
    r.frame("SUBSCRIBE", {"destination": f"/queue/bad.{u}", "id": "s", "selector": "a = 'x' AND (b > 3"})
    return r.read_frame()[0]


def queue_browser(b, u):
    r, _ = connect(b)
    q = f"/queue/browse.{u}"
    for i, color in enumerate(["red", "blue", "red"]):
        sent(r, q, str(i), {"color": color, "persistent": "true"})
    r.frame("SUBSCRIBE", {"destination": q, "id": "b", "browser": "true", "selector": "color = 'red'"})
    seen = [(f[2].decode(), f[1].get("browser")) for f in frames(r) if f[0] == "MESSAGE"]
    subscribed(r, {"destination": q, "id": "c"})
    return seen, bodies(frames(r))


def wildcard_topics(b, u):
    r, _ = connect(b)
    subscribed(r, {"destination": f"/topic/w{u}.*", "id": "one"})
    subscribed(r, {"destination": f"/topic/w{u}.>", "id": "all"})
    sent(r, f"/topic/w{u}.a", "A")
    sent(r, f"/topic/w{u}.a.b", "AB")
    sent(r, f"/topic/x{u}.a", "X")
    return sorted((f[1]["subscription"], f[1]["destination"].replace(u, "U"), f[2].decode())
                  for f in frames(r) if f[0] == "MESSAGE")


def wildcard_queues(b, u):
    r, _ = connect(b)
    sent(r, f"/queue/wq{u}.a", "qa")
    sent(r, f"/queue/wq{u}.b.c", "qbc")
    sent(r, f"/queue/other{u}.a", "no")
    subscribed(r, {"destination": f"/queue/wq{u}.>", "id": "w"})
    got = frames(r)
    sent(r, f"/queue/wq{u}.later", "later")  # a queue made after the SUBSCRIBE
    got += frames(r, quiet=2.0)  # ActiveMQ may take a moment to attach to the existing queues
    # No order across queues is promised (docs/compatibility.md): compare the sets.
    return sorted((f[1]["destination"].replace(u, "U"), f[2].decode()) for f in got if f[0] == "MESSAGE")


def composite_send(b, u):
    r, _ = connect(b)
    subscribed(r, {"destination": f"/queue/ca.{u}", "id": "a"})
    subscribed(r, {"destination": f"/topic/cb.{u}", "id": "b"})
    sent(r, f"/queue/ca.{u},/topic/cb.{u}", "C", {"persistent": "true"})
    return sorted((f[1]["destination"].replace(u, "U"), f[2].decode()) for f in frames(r) if f[0] == "MESSAGE")


def composite_subscribe(b, u):
    r, _ = connect(b)
    sent(r, f"/queue/cs1.{u}", "one")
    subscribed(r, {"destination": f"/queue/cs1.{u},/queue/cs2.{u}", "id": "c"})
    sent(r, f"/queue/cs2.{u}", "two")
    sent(r, f"/queue/cs3.{u}", "three")
    return sorted((f[1]["destination"].replace(u, "U"), f[2].decode()) for f in frames(r, quiet=2.0) if f[0] == "MESSAGE")


def virtual_topic(b, u):
    a, _ = connect(b)
    c, _ = connect(b)
    subscribed(a, {"destination": f"/queue/Consumer.A.VirtualTopic.V{u}", "id": "a"})
    subscribed(c, {"destination": f"/queue/Consumer.B.VirtualTopic.V{u}", "id": "b"})
    p, _ = connect(b)
    subscribed(p, {"destination": f"/topic/VirtualTopic.V{u}", "id": "t"})
    sent(p, f"/topic/VirtualTopic.V{u}", "V", {"persistent": "true"})
    out = []
    for r in (a, c, p):
        out += [(f[1]["destination"].replace(u, "U"), f[1].get("persistent"), f[2].decode())
                for f in frames(r) if f[0] == "MESSAGE"]
    return sorted(out)


def temporary_queue_reply(b, u):
    asker, _ = connect(b)
    subscribed(asker, {"destination": "/temp-queue/replies", "id": "t"})
    sent(asker, f"/queue/req.{u}", "ask", {"reply-to": "/temp-queue/replies"})
    server, _ = connect(b)
    subscribed(server, {"destination": f"/queue/req.{u}", "id": "srv"})
    [req] = [f for f in frames(server) if f[0] == "MESSAGE"]
    reply_to = req[1]["reply-to"]
    sent(server, reply_to, "answer")
    got = [(f[1]["destination"], f[2].decode()) for f in frames(asker) if f[0] == "MESSAGE"]
    asker.close()
    time.sleep(0.5)
    server.frame("SEND", {"destination": reply_to, "receipt": "late"}, "too late")
    late = server.read_frame()[0]
    return reply_to.startswith("/remote-temp-queue/"), got, late


def consumers_exclusive_take_over(b, u):
    """Issue 16: the first exclusive consumer gets everything; when it goes the next one
    gets its unacked messages first (redelivered), in order."""
    q = f"/queue/excl.{u}"
    a, _ = connect(b)
    subscribed(a, {"destination": q, "id": "a", "ack": "client-individual", "activemq.exclusive": "true",
                   "activemq.prefetchSize": "2"})
    c, _ = connect(b)
    subscribed(c, {"destination": q, "id": "c", "ack": "client-individual", "activemq.exclusive": "true"})
    p, _ = connect(b)
    for i in range(4):
        sent(p, q, f"m{i}", {"persistent": "true"})
    first = bodies(frames(a, quiet=0.5))
    before = bodies(frames(c, quiet=0.5))
    a.close()
    after = [(f[2].decode(), f[1].get("redelivered")) for f in frames(c) if f[0] == "MESSAGE"]
    return first, before, after


def consumers_priority(b, u):
    """Issue 16: the higher activemq.priority consumer gets messages while it has prefetch
    room; the lower one gets the rest."""
    q = f"/queue/cprio.{u}"
    low, _ = connect(b)
    subscribed(low, {"destination": q, "id": "l", "ack": "client-individual", "activemq.priority": "1",
                     "activemq.prefetchSize": "2"})
    high, _ = connect(b)
    subscribed(high, {"destination": q, "id": "h", "ack": "client-individual", "activemq.priority": "5",
                      "activemq.prefetchSize": "2"})
    p, _ = connect(b)
    for i in range(6):
        sent(p, q, f"m{i}", {"persistent": "true"})
    return bodies(frames(high, quiet=0.5)), bodies(frames(low, quiet=0.5))


def consumers_message_groups(b, u):
    """Issue 16: each group goes to one consumer, in order; the first message of a group to
    its consumer says so; when the owner goes its group moves, nothing reordered."""
    q = f"/queue/groups.{u}"
    a, _ = connect(b)
    subscribed(a, {"destination": q, "id": "a", "ack": "client-individual", "activemq.prefetchSize": "10"})
    c, _ = connect(b)
    subscribed(c, {"destination": q, "id": "c", "ack": "client-individual", "activemq.prefetchSize": "20"})
    p, _ = connect(b)
    for i in range(3):
        for g in ("x", "y", "z", "w"):
            sent(p, q, f"{g}{i}", {"persistent": "true", "JMSXGroupID": g})
    got = {who: [f for f in frames(r, quiet=0.5) if f[0] == "MESSAGE"] for who, r in (("a", a), ("c", c))}
    owners = {}
    for who, fs in got.items():
        for f in fs:
            owners.setdefault(f[2].decode()[0], set()).add(who)  # the body's first letter is its group
    first = sorted((f[2].decode(), f[1].get("JMSXGroupFirstForConsumer")) for fs in got.values() for f in fs
                   if f[2].decode().endswith("0"))
    moved = sorted(g for g, who in owners.items() if who == {"a"})
    a.close()
    after = [(f[2].decode(), f[1].get("JMSXGroupFirstForConsumer")) for f in frames(c) if f[0] == "MESSAGE"]
    in_order = [body for body, _ in after] == [f"{g}{i}" for i in range(3) for g in ("x", "y", "z", "w") if g in moved]
    flagged = sorted(body for body, flag in after if flag == "true")
    return sorted(len(w) for w in owners.values()), first, in_order, flagged == [f"{g}0" for g in moved]


SCENARIOS = [
    login_is_accepted, heart_beat_negotiation, stomp_1_0_connected_heart_beat, stomp_1_0_with_heart_beat_asked,
    jms_headers_round_trip, sender_timestamp_is_kept, nack_is_a_poison_ack, nack_in_client_mode,
    nack_of_a_non_persistent_message, consumer_loss_counts_toward_redelivery, nack_redelivered_with_back_off,
    priority_order, scheduled_delivery, scheduled_in_transaction, scheduler_management,
    scheduler_management_misnamed_range, advisory_replay, queue_selector,
    selector_on_jms_headers_and_numbers, invalid_selector, queue_browser, wildcard_topics, wildcard_queues,
    composite_send, composite_subscribe, consumers_exclusive_take_over, consumers_priority, consumers_message_groups,
    virtual_topic, temporary_queue_reply, silent_client_is_dropped, frame_over_the_limit,
]

class OneOf:
    """ActiveMQ's answer varies between runs: any of these is its documented answer."""

    def __init__(self, *answers):
        self.answers = answers

    def __eq__(self, other):
        return other in self.answers

    def __repr__(self):
        return "one of " + " | ".join(repr(a) for a in self.answers)


# scenario -> (what ActiveMQ gives, what Tandem gives); docs/compatibility.md says why.
KNOWN_DIFFERENCES = {
    # 1.0 has no heart-beats in its spec: Tandem answers 0,0 whatever the client asks.
    "stomp_1_0_with_heart_beat_asked": ("400,300", "0,0"),
    # STOMP 1.2: in client mode a NACK covers every earlier unacked message, as ACK does.
    "nack_in_client_mode": (["1"], ["0", "1"]),
    # ActiveMQ drops a non-persistent dead letter (processNonPersistent=false); Tandem keeps it.
    "nack_of_a_non_persistent_message": ([], ["np"]),
    # ActiveMQ without a redelivery plugin redelivers to STOMP consumers forever; Tandem
    # dead-letters after 7 deliveries (maximumRedeliveries 6).
    "consumer_loss_counts_toward_redelivery": ((9, []), (7, ["m"])),
    # ActiveMQ does not read AMQ_SCHEDULER_ACTION_START_TIME (its Java constant's name; the
    # header is ACTION_START_TIME) and removes every job; Tandem refuses the request.
    "scheduler_management_misnamed_range": ((["RECEIPT"], []), (["ERROR"], ["kept?"])),
    # ActiveMQ replays the queue's consumers to a new consumer-advisory subscriber in some
    # runs and not in others: alone against this configuration it replayed none (the helper
    # that wrote the scenario, 3 runs), within the whole suite it replayed both, as Tandem
    # does (fresh-clone check of 2026-12-07). Either answer of ActiveMQ's is accepted;
    # Tandem's is fixed. Destinations agree in both.
    "advisory_replay": (
        OneOf((0, [], [], True, True),
              (2, ["2", "2"], ["/topic/ActiveMQ.Advisory.Consumer.Queue.adv.U"] * 2, True, True)),
        (2, ["2", "2"], ["/topic/ActiveMQ.Advisory.Consumer.Queue.adv.U"] * 2, True, True)),
    # ActiveMQ's STOMP transport does not show JMSXGroupFirstForConsumer; Tandem sends it on
    # the first message of a group to its consumer, as issue 16 asks. Owners and order agree.
    "consumers_message_groups": (
        ([1, 1, 1, 1], [("w0", None), ("x0", None), ("y0", None), ("z0", None)], True, False),
        ([1, 1, 1, 1], [("w0", "true"), ("x0", "true"), ("y0", "true"), ("z0", "true")], True, True)),
}


def compare(scenario):
    def test(brokers):
        u = uuid.uuid4().hex[:8]
        amq_answer = scenario(AMQ, u)
        tandem = new_broker(brokers, config=getattr(scenario, "tandem_config", None))
        ours = scenario(tandem, u)
        name = scenario.__name__
        if name in KNOWN_DIFFERENCES:
            expected_amq, expected_ours = KNOWN_DIFFERENCES[name]
            assert expected_amq == amq_answer, f"ActiveMQ changed: {amq_answer!r}, documented {expected_amq!r}"
            assert ours == expected_ours, f"Tandem gives {ours!r}, documented {expected_ours!r}"
        else:
            assert ours == amq_answer, f"ActiveMQ: {amq_answer!r}\nTandem:   {ours!r}"
    test.__name__ = scenario.__name__
    return test


AMQ = None

if __name__ == "__main__":
    AMQ = ActiveMQ()
    try:
        try:
            AMQ.start()
        except Exception as e:  # skip() raises; report it as the runner does
            print(f"SKIP all: {e}", flush=True)
            raise SystemExit(77)
        run([compare(s) for s in SCENARIOS])
    finally:
        AMQ.stop()
