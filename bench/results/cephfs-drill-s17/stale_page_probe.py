"""Does a page one ceph-fuse mount read stay stale after another mount writes into it?
(docs/failover.md section 4, bug 9). Usage: stale_page_probe.py MOUNT1 MOUNT2 (two mounts of
one CephFS, e.g. /var/tmp/tandem-cluster-NAME/mnt/host1 and .../host2). Run 2026-12-08 on
harness s17: preallocated file, plain 0/5 fresh, DONTNEED after the read 5/5 fresh."""
import os, sys, time
M1, M2 = sys.argv[1], sys.argv[2]
def trial(name, variant, prealloc):
    p1=f"{M1}/{name}"; p2=f"{M2}/{name}"
    fd=os.open(p1, os.O_CREAT|os.O_RDWR|os.O_TRUNC, 0o644)
    if prealloc: os.ftruncate(fd, 1<<20)
    os.pwrite(fd, b"A"*100, 0); os.fdatasync(fd)
    time.sleep(0.05)
    r=os.open(p2, os.O_RDONLY)
    if variant in ("random","random+dontneed"): os.posix_fadvise(r,0,0,os.POSIX_FADV_RANDOM)
    d1=os.pread(r, 8192, 0)
    if variant in ("dontneed","random+dontneed"): os.posix_fadvise(r,0,0,os.POSIX_FADV_DONTNEED)
    os.close(r)
    os.pwrite(fd, b"B"*200, 100); os.fdatasync(fd)
    time.sleep(0.05)
    r=os.open(p2, os.O_RDONLY)
    d2=os.pread(r, 8192, 0); os.close(r)
    os.close(fd); os.unlink(p1)
    fresh = d2[100:300]==b"B"*200
    return fresh, len(d1), len(d2), d2[100:104]
for prealloc in (False, True):
  for v in ("plain","dontneed","random","random+dontneed"):
    res=[trial(f"stale-{v}-{prealloc}-{i}", v, prealloc) for i in range(5)]
    print(f"prealloc={prealloc} {v:16s} fresh {sum(r[0] for r in res)}/5  sample {res[0]}")
