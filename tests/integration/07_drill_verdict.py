"""07 failover: runs tandem-drill once and checks its verdict, so CTest can require that the
drill SEES loss against a deliberately broken tandemd (tandemd-unsafe, docs/failover.md "The
unsafe build") and sees none against the real one, with the same drill.

  07_drill_verdict.py --drill PATH --tandemd PATH --expect EXPECTATION [--defect NAME] -- DRILL ARGS...

EXPECTATION:
  clean           exit 0, lost 0, overlapping_writers 0, unflagged_duplicates 0, order_violations 0,
                  policy_violations 0, acked_redelivered 0
  lost            exit 1 and lost > 0
  acked-redelivered exit 1 and acked_redelivered > 0 (a message came back after its ACK's RECEIPT)
  lost-or-overlap exit 1 and (lost > 0 or overlapping_writers > 0)
  any-violation   exit 1 and (lost, overlapping_writers or unflagged_duplicates > 0)

--defect sets TANDEM_UNSAFE_FAULT for the brokers. A drill that could not run to the end
(exit 3) fails the test, whatever is expected: "saw nothing" must never pass by accident.
Exit 77 (CTest: skipped) only when a kind needs FUSE and /dev/fuse is not usable here."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
FUSE_KINDS = {"stop-lease", "eio-write", "eio-fsync", "enospc-write", "enospc-fsync", "power-loss", "fs-freeze",
              "hang-resend"}


def kinds_of(drill_args):
    for i, a in enumerate(drill_args):
        if a == "--kinds" and i + 1 < len(drill_args):
            return set(drill_args[i + 1].split(","))
        if a.startswith("--kinds="):
            return set(a.split("=", 1)[1].split(","))
    return set()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--drill", required=True)
    p.add_argument("--tandemd", required=True)
    p.add_argument("--expect", required=True,
                   choices=["clean", "lost", "lost-or-overlap", "any-violation", "acked-redelivered"])
    p.add_argument("--defect")
    p.add_argument("drill_args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    drill_args = [x for x in a.drill_args if x != "--"]
    if kinds_of(drill_args) & FUSE_KINDS and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        print("TANDEM_SKIPPED: /dev/fuse is not usable here; these kinds run on tandem-faultfs")
        return SKIP

    env = dict(os.environ)
    env.pop("TANDEM_UNSAFE_FAULT", None)
    if a.defect:
        env["TANDEM_UNSAFE_FAULT"] = a.defect
    with tempfile.TemporaryDirectory(prefix="tandem-drill-verdict-") as tmp:
        record_path = os.path.join(tmp, "drill.json")
        # The drill keeps its work directory (store, logs) when it finds a violation, as the
        # defect tests make it do on purpose: put it in ours, which goes away when the test
        # passes and is kept (and named) when it fails.
        cmd = [a.drill, "--tandemd", a.tandemd, "--base-port", "0", "--quiet", "--json", record_path,
               "--work-dir", os.path.join(tmp, "work")] + drill_args
        print("$", " ".join(cmd), f"(TANDEM_UNSAFE_FAULT={a.defect})" if a.defect else "", flush=True)
        rc = subprocess.run(cmd, env=env).returncode
        try:
            with open(record_path) as f:
                record = json.load(f)
        except (OSError, ValueError) as e:
            record = None
            print(f"FAIL: the drill wrote no record ({e}); exit {rc}")
        ok = record is not None and judge(a.expect, rc, record)
        if not ok:
            kept = tempfile.mkdtemp(prefix="tandem-drill-verdict-failed-")
            shutil.move(tmp, os.path.join(kept, "run"))
            os.makedirs(tmp)  # for TemporaryDirectory's cleanup
            print(f"the drill's record, logs and store are kept in {kept}/run")
        return 0 if ok else 1


def judge(expect, rc, record):
    lost = record.get("lost", 0)
    overlap = record.get("overlapping_writers", 0)
    unflagged = record.get("unflagged_duplicates", 0)
    order = record.get("order_violations", 0)
    policy = record.get("policy_violations", 0)
    # A record without the field comes from a drill that does not check it: never "clean".
    acked_again = record.get("acked_redelivered")
    print(f"exit {rc}: lost {lost}, overlapping_writers {overlap}, unflagged_duplicates {unflagged}, "
          f"order_violations {order}, policy_violations {policy}, acked_redelivered {acked_again} "
          f"(of {record.get('acks_receipted')} ACKs receipted), "
          f"aborted {record.get('aborted')}, per kind {json.dumps(record.get('kinds', {}))}")
    if rc == 3 or record.get("aborted"):
        print(f"FAIL: the drill did not run to the end: {record.get('aborted')}")
        return False
    if expect == "clean":
        ok = rc == 0 and lost == 0 and overlap == 0 and unflagged == 0 and order == 0 and policy == 0 and acked_again == 0
    elif expect == "acked-redelivered":
        ok = rc == 1 and (acked_again or 0) > 0
    elif expect == "lost":
        ok = rc == 1 and lost > 0
    elif expect == "lost-or-overlap":
        ok = rc == 1 and (lost > 0 or overlap > 0)
    else:
        ok = rc == 1 and (lost > 0 or overlap > 0 or unflagged > 0)
    print(("PASS" if ok else "FAIL") + f": expected {expect}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
