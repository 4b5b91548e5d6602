#!/usr/bin/python3
# Records how a running ActiveMQ evaluates STOMP selectors; activemq_observed_test.cpp holds
# what it printed for ActiveMQ 5.17.2. Not run by CTest (it needs ActiveMQ and ~5 minutes):
#
#   bench/activemq.sh start /tmp/amq-probe 61733
#   /usr/bin/python3 tests/unit/selector/activemq_probe/probe.py 61733 \
#       tests/unit/selector/activemq_probe/cases.json > observed.jsonl
#   bench/activemq.sh stop /tmp/amq-probe
#
# cases.json: [selector, [headers of message 1, headers of message 2, ...]]. For each
# selector: SUBSCRIBE with it and with NOT (selector), each on a fresh queue, send every
# message to both, and print one JSON line: TRUE (the first got it), FALSE (the second got
# it), UNKNOWN (neither within 2 s), or the ERROR the SUBSCRIBE got.
import json, sys, threading, time, uuid
import stomp

PORT = int(sys.argv[1])
cases = json.load(open(sys.argv[2]))

class L(stomp.ConnectionListener):
    def __init__(self):
        self.messages, self.errors = [], []
        self.cv = threading.Condition()
    def on_message(self, frame):
        with self.cv:
            self.messages.append(frame.headers.get('case'))
            self.cv.notify_all()
    def on_error(self, frame):
        with self.cv:
            self.errors.append(frame.headers.get('message', '') + ' | ' + frame.body[:300])
            self.cv.notify_all()

def run(selector, messages):
    out = {}
    verdicts = {}
    for tag, sel in (('pos', selector), ('neg', None)):
        if tag == 'neg':
            if selector.startswith('convert_string_expressions:'):
                break
            sel = 'NOT (' + selector + ')'
        q = '/queue/probe.' + uuid.uuid4().hex[:12]
        c = stomp.Connection([('127.0.0.1', PORT)], heartbeats=(0, 0))
        l = L(); c.set_listener('', l)
        c.connect('guest', 'guest', wait=True)
        c.subscribe(q, id='1', ack='auto', headers={'selector': sel})
        time.sleep(0.3)
        for i, h in enumerate(messages):
            hh = dict(h); hh['case'] = str(i)
            try:
                c.send(q, body='m', headers=hh)
            except Exception as e:
                l.errors.append('send failed: %r' % e)
        deadline = time.time() + 2.0
        with l.cv:
            while time.time() < deadline and not l.errors and len(l.messages) < len(messages):
                l.cv.wait(0.1)
        time.sleep(0.2)
        out[tag] = {'got': sorted(set(l.messages)), 'errors': l.errors}
        try: c.disconnect()
        except Exception: pass
    res = []
    if out['pos']['errors']:
        return {'error': out['pos']['errors']}
    for i in range(len(messages)):
        s = str(i)
        if s in out['pos']['got']: res.append('TRUE')
        elif 'neg' in out and s in out['neg']['got']: res.append('FALSE')
        else: res.append('UNKNOWN')
    r = {'verdicts': res}
    if 'neg' in out and out['neg']['errors']: r['neg_errors'] = out['neg']['errors']
    return r

for sel, msgs in cases:
    print(json.dumps({'selector': sel, 'messages': msgs, 'result': run(sel, msgs)}), flush=True)
