"""12 package: build the Debian package with CPack from this build tree, check its file list
and control data, then "install" it with dpkg-deb -x into a temp root (dpkg -i would change
the CI machine) and start tandem@example from there the way the unit does: ExecStartPre
(--check-config) then ExecStart, with sd_notify, and stop it with SIGTERM.

Run: python3 12_package.py BUILD_DIR. The manual check on a clean Debian 12 machine is in
docs/operations.md ("Installing the package")."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

from tandem_test import wait_for

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.getcwd()

EXPECTED = [
    "./usr/sbin/tandemd",
    "./usr/bin/tandemctl",
    "./usr/bin/tandem-journal",
    "./usr/bin/tandem-bench",
    "./usr/bin/tandem-drill",
    "./usr/lib/systemd/system/tandem@.service",
    "./etc/tandem/example.json",
    "./usr/share/doc/tandem/operations.md",
    "./usr/share/doc/tandem/configuration.md",
    "./usr/share/doc/tandem/examples/srv-tandem-orders.mount",
    "./usr/share/doc/tandem/examples/orders-mq1.json",
    "./usr/share/doc/tandem/examples/orders-mq2.json",
    "./usr/share/doc/tandem/examples/orders-mq3.json",
    "./usr/share/doc/tandem/examples/README.md",
    "./usr/share/tandem/config_schema.json",
    "./usr/share/tandem/fence/tandem-fence-cephfs",
]


def sh(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)
    assert r.returncode == 0, f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def main():
    work = tempfile.mkdtemp(prefix="tandem-pkg-")
    proc = None
    try:
        # -B: the package and CPack's staging tree go to a temp dir, so parallel runs and
        # developers' own `cpack` calls do not collide.
        sh("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", work)
        [deb] = [os.path.join(work, f) for f in os.listdir(work) if f.endswith(".deb")]
        assert re.match(r"tandem_\d+\.\d+\.\d+_\w+\.deb$", os.path.basename(deb)), deb
        print("PASS the package builds:", os.path.basename(deb))

        listing = sh("dpkg-deb", "-c", deb)
        paths = {line.split()[-1] for line in listing.splitlines()}
        missing = [p for p in EXPECTED if p not in paths]
        assert not missing, f"missing from the package: {missing}\n{listing}"
        modes = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
        assert modes["./usr/sbin/tandemd"].startswith("-rwxr-xr-x"), modes["./usr/sbin/tandemd"]
        assert modes["./etc/tandem/example.json"] == "-rw-r-----", modes["./etc/tandem/example.json"]
        print("PASS the file list (dpkg-deb -c) has binaries, unit, configs, docs, schema")

        control = sh("dpkg-deb", "-I", deb)
        assert re.search(r"^ Package: tandem$", control, re.M), control
        assert re.search(r"^ Depends: .*\badduser\b", control, re.M), control
        assert "libssl3" in control and "libsystemd0" in control, control  # from dpkg-shlibdeps
        ctrl = os.path.join(work, "control")
        sh("dpkg-deb", "-e", deb, ctrl)
        with open(os.path.join(ctrl, "postinst")) as f:
            postinst = f.read()
        assert "adduser --system --group" in postinst and " tandem" in postinst
        sh("sh", "-n", os.path.join(ctrl, "postinst"))  # it parses
        with open(os.path.join(ctrl, "conffiles")) as f:
            assert f.read().split() == ["/etc/tandem/example.json"]
        print("PASS control: Depends adduser and the shared libraries, postinst creates the tandem user, conffiles")

        root = os.path.join(work, "root")
        sh("dpkg-deb", "-x", deb, root)
        tandemd = os.path.join(root, "usr/sbin/tandemd")
        for tool in ["tandemctl", "tandem-journal", "tandem-bench", "tandem-drill"]:
            r = subprocess.run([os.path.join(root, "usr/bin", tool), "--help"], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and r.stdout, f"{tool} --help: {r.returncode} {r.stderr}"
        for f in ["example.json"]:
            sh(tandemd, "--check-config", os.path.join(root, "etc/tandem", f))
        for f in ["orders-mq1.json", "orders-mq2.json", "orders-mq3.json"]:
            sh(tandemd, "--check-config", os.path.join(root, "usr/share/doc/tandem/examples", f))
        with open(os.path.join(root, "usr/share/doc/tandem/configuration.md")) as f:
            assert f.read() == sh(tandemd, "--print-config-reference")
        print("PASS the extracted binaries run and the shipped configs pass --check-config")

        # tandem@example as the unit starts it, from the extracted tree. The example's store
        # (/var/lib/tandem/example/store, the unit's StateDirectory) and ports become temp ones.
        with open(os.path.join(root, "usr/lib/systemd/system/tandem@.service")) as f:
            unit = f.read()
        exec_pre = re.search(r"^ExecStartPre=(.*)$", unit, re.M).group(1).replace("%i", "example").split()
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).replace("%i", "example").split()
        with open(os.path.join(root, "etc/tandem/example.json")) as f:
            cfg = json.load(f)
        assert cfg["store"] == "/var/lib/tandem/example/store" and cfg["create_store"] is True
        cfg.update({"store": os.path.join(work, "state/example/store"), "listen": "127.0.0.1:0",
                    "admin_listen": "127.0.0.1:0"})
        os.makedirs(os.path.join(work, "state/example"))
        config_path = os.path.join(work, "example.json")
        with open(config_path, "w") as f:
            json.dump(cfg, f)

        def localize(cmd):
            return [tandemd if c == "/usr/sbin/tandemd" else config_path if c == "/etc/tandem/example.json" else c
                    for c in cmd]

        sh(*localize(exec_pre))
        log_path = os.path.join(work, "tandemd.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(localize(exec_start), stdout=log, stderr=subprocess.STDOUT)

        def log_text():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")

        def serving():
            if proc.poll() is not None:
                raise AssertionError(f"tandemd exited with {proc.returncode}:\n{log_text()}")
            return re.search(r"main master epoch=1 ", log_text())

        wait_for(serving, 30, "tandem@example to become master")
        port = int(re.search(r"stomp listening .*port=(\d+)", log_text()).group(1))
        admin = int(re.search(r"admin listening .*port=(\d+)", log_text()).group(1))
        ctl = os.path.join(root, "usr/bin/tandemctl")
        sh(ctl, "send", "/queue/pkg", "--url", f"tcp://127.0.0.1:{port}", "--body", "installed")
        out = sh(ctl, "receive", "/queue/pkg", "--url", f"tcp://127.0.0.1:{port}")
        assert out.strip() == "installed", out
        out = sh(ctl, "status", "--admin", f"127.0.0.1:{admin}")
        assert re.search(r"^example\s+\S+\s+master\s+1\s", out, re.M), out
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log_text()
        proc = None
        print("PASS tandem@example starts from the extracted package, serves, and stops cleanly")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
