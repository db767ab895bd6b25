"""fpm-replica-helper against the swap race of issue 11, as an attack: an
unprivileged user exchanges the stable path with a symlink to a decoy (the
stand-in for the directory of the php-fpm binary) in a tight loop while the
test runs hundreds of spawns. The helper must never mount the release
anywhere but the stable path's own directory, never cover the decoy, and
never run anything but the configured command; each spawn either succeeds
correctly or fails cleanly (one line, exit 1 or 2).

Everything runs in a private mount namespace on a tmpfs (`unshare --mount`,
`/` made rprivate, then a tmpfs), so a mount that lands on the wrong target
cannot touch the host. This file is also the driver run there:
`python3 test_610_helper_race.py drive HELPER BASE SPAWNS SECONDS`.

Against the helper of ade8cc9 (symlink checks, then a mount by path) this
test fails: set FPMR_RACE_HELPER=/path/to/old/fpm-replica-helper to run it
against another binary.

A second attack, on the ownership rule itself: the stable path's parent
belongs to the attacker (a layout the rule must refuse), and the attacker
moves the stable directory back and forth between there and a root-owned
sticky directory at the same depth, so that a check which walks up through
".." from the held directory can catch it in the trusted tree and the mount
then find it back in place. Every spawn must be refused. Driver:
`python3 test_610_helper_race.py drive-move HELPER BASE SPAWNS SECONDS`.
Against the helper of 2872c8b (the ".." walk) this test fails.

Also here: the ownership rule that makes the race impossible in the safe
layout (refused: a stable path with an ancestor a non-root user can change),
and symlinks under a release root."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

NOBODY = 65534
AT_FDCWD = -100
RENAME_EXCHANGE = 2
RELEASE_TOOL = "#!/bin/sh\necho ATTACKER\n"
CONFIGURED_TOOL = "#!/bin/sh\necho CONFIGURED\ncat /proc/self/mountinfo\n"


# --- the driver, inside the private mount namespace ------------------------

def write(path, text, mode):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def build_layout(base):
    """A tmpfs layout in which the race is possible but the ownership rule
    passes: a root-owned sticky parent, `live` owned by the attacker (who may
    rename its own entry there) and a symlink of theirs to the decoy."""
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "fpmr-race", base], check=True)
    release = os.path.join(base, "releases", "r1")
    decoy = os.path.join(base, "decoy")
    pub = os.path.join(base, "pub")
    for d, mode in ((os.path.join(base, "releases"), 0o755), (release, 0o755), (decoy, 0o755),
                    (pub, 0o1777)):
        os.mkdir(d)
        os.chmod(d, mode)
    write(os.path.join(release, "tool"), RELEASE_TOOL, 0o755)
    write(os.path.join(decoy, "tool"), CONFIGURED_TOOL, 0o755)
    write(os.path.join(decoy, "DECOY"), "decoy\n", 0o644)
    live = os.path.join(pub, "live")
    os.mkdir(live)
    os.chown(live, NOBODY, NOBODY)
    os.symlink(decoy, os.path.join(pub, "live.sym"))
    os.lchown(os.path.join(pub, "live.sym"), NOBODY, NOBODY)
    conf = os.path.join(base, "helper.conf")
    write(conf, f"release-root {base}/releases\nstable-path {live}\n", 0o644)
    return {"release": release, "decoy": decoy, "pub": pub, "live": live, "conf": conf}


def fork_as_nobody(cwd, deadline, step, finish=None):
    """A child that becomes nobody in `cwd` and calls step(libc) -> (done,
    failed) counts until it is told to stop (SIGTERM) or the deadline
    passes, then finish(libc); it reports {"done", "failures"} through a
    pipe. Returns (pid, read end)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the driver
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        os.chdir(cwd)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        done = failures = 0
        while not stop and time.monotonic() < deadline:
            ok, bad = step(libc)
            done += ok
            failures += bad
        if finish:
            finish(libc)
        os.write(write_end, json.dumps({"done": done, "failures": failures}).encode())
        os._exit(0)
    os.close(write_end)
    return pid, read_end


def start_attacker(pub, deadline):
    """Exchanges live and live.sym in `pub`, as nobody, in a loop."""
    def exchange(libc):
        ok = libc.renameat2(AT_FDCWD, b"live", AT_FDCWD, b"live.sym", RENAME_EXCHANGE) == 0
        return int(ok), int(not ok)
    return fork_as_nobody(pub, deadline, exchange)


def mounts(text):
    """(device, root, mount point, options) of each mountinfo line."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 6:
            out.append((f[2], f[3].replace("\\040", " "), f[4].replace("\\040", " "), f[5]))
    return out


def judge(run, layout, device):
    """One spawn's outcome: ("mounted", ""), ("refused", ""), or ("hit"/"unclean", why)."""
    out, err = run.stdout, run.stderr
    if "ATTACKER" in out:
        return "hit", "the release's program ran instead of the configured one"
    if run.returncode in (1, 2):
        if out == "" and err.startswith("fpm-replica-helper: ") and len(err.strip().splitlines()) == 1:
            return "refused", ""
        return "unclean", f"exit {run.returncode} with {out!r} {err!r}"
    if run.returncode != 0 or not out.startswith("CONFIGURED\n"):
        return "unclean", f"exit {run.returncode} with {out!r} {err!r}"
    # Where the release is mounted in the command's namespace. The attacker
    # may rename the stable path's directory after the mount, so its mount
    # point may read live or live.sym: both name that same directory.
    allowed = {layout["live"], os.path.join(layout["pub"], "live.sym")}
    release_mounts = [m for m in mounts(out) if m[0] == device and m[1] == "/releases/r1"]
    for dev, root, point, options in mounts(out):
        if point == layout["decoy"] or point.startswith(layout["decoy"] + "/"):
            return "hit", f"{root} mounted over the decoy"
    if len(release_mounts) != 1:
        return "hit", f"the release is mounted {len(release_mounts)} times: {release_mounts}"
    _, _, point, options = release_mounts[0]
    if point not in allowed:
        return "hit", f"the release is mounted at {point}"
    return "mounted", options


def drive(helper, base, spawns, seconds):
    layout = build_layout(base)
    device = next(m[0] for m in mounts(open("/proc/self/mountinfo").read()) if m[2] == base)
    deadline = time.monotonic() + seconds
    attacker, report = start_attacker(layout["pub"], deadline + 5)
    counts = {"spawns": 0, "mounted": 0, "refused_exit_1": 0, "refused_exit_2": 0, "hits": 0,
              "unclean": 0}
    examples, options_seen, refusal_lines = [], set(), {}
    env = {"PATH": "/usr/bin:/bin"}
    try:
        time.sleep(0.05)
        while counts["spawns"] < spawns and time.monotonic() < deadline:
            run = subprocess.run([helper, "spawn", "--config", layout["conf"], "--release",
                                  layout["release"], "--stable-path", layout["live"], "--",
                                  os.path.join(layout["decoy"], "tool")],
                                 capture_output=True, text=True, timeout=10, env=env)
            counts["spawns"] += 1
            verdict, detail = judge(run, layout, device)
            if verdict == "mounted":
                counts["mounted"] += 1
                options_seen.add(detail)
            elif verdict == "refused":
                counts[f"refused_exit_{run.returncode}"] += 1
                line = run.stderr.strip().replace(layout["live"], "LIVE")
                refusal_lines[line] = refusal_lines.get(line, 0) + 1
            else:
                counts["hits" if verdict == "hit" else "unclean"] += 1
                if len(examples) < 5:
                    examples.append(detail)
    finally:
        os.kill(attacker, signal.SIGTERM)
        _, status = os.waitpid(attacker, 0)
    attack = json.loads(os.read(report, 4096).decode() or "{}")
    attack = {"swaps": attack.get("done", 0), "swap_failures": attack.get("failures", 0)}
    os.close(report)
    # Nothing stayed mounted in this namespace: the helper's mounts lived in
    # its own namespaces and went with them.
    leftover = [m for m in mounts(open("/proc/self/mountinfo").read())
                if m[2].startswith(base + "/")]
    decoy_intact = sorted(os.listdir(layout["decoy"])) == ["DECOY", "tool"]
    print(json.dumps({**counts, **attack, "examples": examples, "options": sorted(options_seen),
                      "refusals": refusal_lines, "leftover_mounts": leftover,
                      "decoy_intact": decoy_intact}))


# --- the second driver: moving the stable path into a trusted tree ----------

def build_move_layout(base):
    """The stable path `home/live` in a directory of the attacker's, and a
    root-owned sticky `pub` at the same depth that it can be moved into (a
    directory moves to another parent only if its owner moves it, so `live`
    is the attacker's too, as the rule allows)."""
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "fpmr-move", base], check=True)
    release = os.path.join(base, "releases", "r1")
    home, pub = os.path.join(base, "home"), os.path.join(base, "pub")
    live = os.path.join(home, "live")
    for d, mode in ((os.path.join(base, "releases"), 0o755), (release, 0o755), (home, 0o755),
                    (live, 0o755), (pub, 0o1777)):
        os.mkdir(d)
        os.chmod(d, mode)
    for d in (home, live):
        os.chown(d, NOBODY, NOBODY)
    tool = os.path.join(base, "tool")
    write(tool, "#!/bin/sh\necho SPAWNED\n", 0o755)
    conf = os.path.join(base, "helper.conf")
    write(conf, f"release-root {base}/releases\nstable-path {live}\n", 0o644)
    return {"base": base, "release": release, "home": home, "live": live, "conf": conf, "tool": tool}


def start_mover(base, deadline):
    """Moves home/live to pub/live and back, as nobody, in a loop; leaves it
    where the configuration names it, as before the attack."""
    def move(libc):
        ok = bad = 0
        for src, dst in ((b"home/live", b"pub/live"), (b"pub/live", b"home/live")):
            if libc.rename(src, dst) == 0:
                ok += 1
            else:
                bad += 1
        return ok, bad
    return fork_as_nobody(base, deadline, move, lambda libc: libc.rename(b"pub/live", b"home/live"))


def drive_move(helper, base, spawns, seconds):
    layout = build_move_layout(base)
    deadline = time.monotonic() + seconds
    mover, report = start_mover(base, deadline + 5)
    counts = {"spawns": 0, "spawned": 0, "refused_exit_1": 0, "refused_exit_2": 0, "unclean": 0}
    examples, refusal_lines = [], {}
    try:
        time.sleep(0.05)
        while counts["spawns"] < spawns and time.monotonic() < deadline:
            run = subprocess.run([helper, "spawn", "--config", layout["conf"], "--release",
                                  layout["release"], "--stable-path", layout["live"], "--",
                                  layout["tool"]],
                                 capture_output=True, text=True, timeout=10,
                                 env={"PATH": "/usr/bin:/bin"})
            counts["spawns"] += 1
            one_line = run.stdout == "" and run.stderr.startswith("fpm-replica-helper: ") and \
                len(run.stderr.strip().splitlines()) == 1
            if run.returncode == 0 and run.stdout == "SPAWNED\n":
                counts["spawned"] += 1  # mounted over a path its parent's owner controls
            elif run.returncode in (1, 2) and one_line:
                counts[f"refused_exit_{run.returncode}"] += 1
                line = run.stderr.strip().replace(base, "BASE")
                refusal_lines[line] = refusal_lines.get(line, 0) + 1
            else:
                counts["unclean"] += 1
                if len(examples) < 5:
                    examples.append(f"exit {run.returncode} with {run.stdout!r} {run.stderr!r}")
    finally:
        os.kill(mover, signal.SIGTERM)
        os.waitpid(mover, 0)
    attack = json.loads(os.read(report, 4096).decode() or "{}")
    attack = {"moves": attack.get("done", 0), "move_failures": attack.get("failures", 0)}
    os.close(report)
    print(json.dumps({**counts, **attack, "examples": examples, "refusals": refusal_lines}))


# --- the tests --------------------------------------------------------------

if __name__ != "__main__":
    import pytest

    import harness
    from releases import make_release, write_helper_conf

    def race(httpd, helper, spawns=1000, seconds=25, driver="drive"):
        base = os.path.join(httpd.root, "race")
        os.makedirs(base)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                            os.path.abspath(__file__), driver, helper, base, str(spawns),
                            str(seconds)],
                           capture_output=True, text=True, timeout=seconds + 45)
        assert r.returncode == 0, r.stdout + r.stderr
        result = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"\n{os.path.basename(helper)}: {json.dumps(result)}")
        # The host never saw the tmpfs (the driver's namespace is gone).
        assert not os.path.ismount(base)
        return result

    def helpers():
        if os.environ.get("FPMR_RACE_HELPER"):
            return [os.environ["FPMR_RACE_HELPER"]]
        return [harness.HELPER, harness.HELPER + "-fallback"]

    @pytest.mark.parametrize("helper", helpers(), ids=os.path.basename)
    def test_swapping_the_stable_path_for_a_symlink_never_redirects_the_mount(httpd, helper):
        result = race(httpd, helper)
        assert result["swaps"] > 1000, result  # the attacker really was swapping
        assert result["spawns"] >= 200, result
        assert result["hits"] == 0, result
        assert result["unclean"] == 0, result
        assert result["decoy_intact"] and result["leftover_mounts"] == [], result
        # Both sides of the race were met: spawns that found the directory
        # in place and mounted, and spawns that found the symlink and refused.
        assert result["mounted"] > 0, result
        assert result["refused_exit_1"] + result["refused_exit_2"] > 0, result
        assert result["mounted"] + result["refused_exit_1"] + result["refused_exit_2"] == result["spawns"]
        # Every mount read-only, nosuid, nodev.
        for options in result["options"]:
            assert {"ro", "nosuid", "nodev"} <= set(options.split(",")), result

    @pytest.mark.parametrize("helper", helpers(), ids=os.path.basename)
    def test_moving_the_stable_path_into_a_trusted_tree_never_passes_the_check(httpd, helper):
        result = race(httpd, helper, spawns=1000, seconds=10, driver="drive-move")
        assert result["moves"] > 1000, result  # the attacker really was moving it
        assert result["spawns"] >= 100, result
        assert result["spawned"] == 0, result
        assert result["unclean"] == 0, result
        assert result["refused_exit_1"] + result["refused_exit_2"] == result["spawns"], result
        # The refusal names the directory and its owner. (Checked from the
        # top, `home` is refused before `live` is looked up, wherever it is.)
        owned = ("fpm-replica-helper: --stable-path 'BASE/home/live': its ancestor 'BASE/home' is "
                 f"owned by nobody (uid {NOBODY}), who could swap the stable path")
        assert result["refusals"].get(owned, 0) > 0, result

    # --- the ownership rule and symlinks under a release root ---

    @pytest.fixture
    def tree(httpd):
        app = os.path.join(httpd.root, "app")
        r1 = make_release(app, "r1")
        return {"root": httpd.root, "app": app, "r1": r1, "releases": f"{app}/releases"}

    def spawn(tree, stable, release=None, release_root=None, command=("true",)):
        conf = write_helper_conf(os.path.join(tree["root"], "conf", "race-helper.conf"),
                                 release_root or tree["releases"], stable)
        return subprocess.run([harness.HELPER, "spawn", "--config", conf, "--release",
                               release or tree["r1"], "--stable-path", stable, "--", *command],
                              capture_output=True, text=True, timeout=10)

    def refused(r, message):
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.strip() == "fpm-replica-helper: " + message, r.stderr

    def stable_under(tree, name, mode, owner=0):
        parent = os.path.join(tree["root"], name)
        os.makedirs(os.path.join(parent, "live"))
        os.chmod(parent, mode)
        os.chown(parent, owner, owner)
        return parent, os.path.join(parent, "live")

    def test_stable_path_under_a_directory_of_another_user_is_refused(httpd, tree):
        parent, live = stable_under(tree, "deploy", 0o755, owner=NOBODY)
        refused(spawn(tree, live), f"--stable-path '{live}': its ancestor '{parent}' is owned by "
                                   f"nobody (uid {NOBODY}), who could swap the stable path")
        # Also when the untrusted directory is further up.
        deeper = os.path.join(live, "sub")
        os.makedirs(deeper)
        refused(spawn(tree, deeper), f"--stable-path '{deeper}': its ancestor '{parent}' is owned by "
                                     f"nobody (uid {NOBODY}), who could swap the stable path")

    def test_stable_path_under_a_group_writable_directory_is_refused(httpd, tree):
        parent, live = stable_under(tree, "shared", 0o775)
        refused(spawn(tree, live), f"--stable-path '{live}': its ancestor '{parent}' is owned by root "
                                   "but writable by group root (gid 0) without the sticky bit, "
                                   "who could swap the stable path")
        os.chmod(parent, 0o757)
        refused(spawn(tree, live), f"--stable-path '{live}': its ancestor '{parent}' is owned by root "
                                   "but writable by others without the sticky bit, who could swap "
                                   "the stable path")

    def test_stable_path_under_a_root_owned_sticky_directory_is_accepted(httpd, tree):
        # As /tmp: others may create entries there but not rename root's.
        # The stable path itself may even belong to someone else.
        _, live = stable_under(tree, "sticky", 0o1777)
        os.chown(live, NOBODY, NOBODY)
        r = spawn(tree, live, command=("/bin/sh", "-c", f"cat {live}/public/static.txt"))
        assert r.returncode == 0 and r.stdout == "static release=r1\n", r.stderr

    def test_symlinks_under_the_release_root_are_refused(httpd, tree):
        _, live = stable_under(tree, "srv", 0o755)
        releases = tree["releases"]
        os.symlink("r1", os.path.join(releases, "link"))
        refused(spawn(tree, live, release=f"{releases}/link"),
                f"--release '{releases}/link' has a symlink in it (pass the resolved path)")
        # A symlink in a middle component, the last one a real directory.
        refused(spawn(tree, live, release=f"{releases}/link/public"),
                f"--release '{releases}/link/public' has a symlink in it (pass the resolved path)")
        # The release itself, by its real path, is fine.
        assert spawn(tree, live).returncode == 0

    def test_release_root_behind_a_symlink_only_root_could_place(httpd, tree):
        _, live = stable_under(tree, "srv", 0o755)
        # The deploy user's directory holds a symlink of theirs to the releases:
        # following it would let them move the release root anywhere.
        deploy = os.path.join(tree["root"], "deploy-home")
        os.makedirs(deploy)
        os.chown(deploy, NOBODY, NOBODY)
        link = os.path.join(deploy, "releases")
        os.symlink(tree["releases"], link)
        os.lchown(link, NOBODY, NOBODY)
        refused(spawn(tree, live, release_root=link),
                f"release-root '{link}': the symlink '{link}' is owned by nobody (uid {NOBODY}), "
                "so its owner could move the root; write the real path")
        # The same symlink made by root in a root-only directory is followed.
        trusted = os.path.join(tree["root"], "etc-releases")
        os.symlink(tree["releases"], trusted)
        assert spawn(tree, live, release_root=trusted).returncode == 0


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] in ("drive", "drive-move"):
    (drive if sys.argv[1] == "drive" else drive_move)(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                                      float(sys.argv[5]))
