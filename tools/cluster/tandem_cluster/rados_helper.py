"""Runs inside the admin network namespace (see ceph_io.MonSession): one librados connection,
commands in and answers out as JSON lines on stdin/stdout.

    in:  {"target": "mon"|"mgr", "cmd": {...}, "timeout": seconds}
    out: {"rc": int, "out": str, "err": str}   (the first line answers the connect)
"""
import json
import sys


def main(conf: str, connect_timeout: str) -> int:
    import rados  # Debian's python3-rados; imported here so the rest works without it

    def say(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    try:
        # No admin socket for this client: it would collide with the CLI's.
        cluster = rados.Rados(conffile=conf, conf={"admin_socket": ""})
        cluster.connect(timeout=int(connect_timeout))
    except rados.Error as e:
        say({"rc": -1, "out": "", "err": f"connect: {e}"})
        return 1
    say({"rc": 0, "out": "", "err": ""})
    for line in sys.stdin:
        req = json.loads(line)
        fn = cluster.mgr_command if req["target"] == "mgr" else cluster.mon_command
        try:
            rc, out, err = fn(json.dumps(req["cmd"]), b"", timeout=int(req["timeout"]))
            say({"rc": rc, "out": out.decode(errors="replace"), "err": err})
        except rados.Error as e:
            say({"rc": -110, "out": "", "err": str(e)})
    cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
