"""A throwaway copy of a root file system (the clean Debian 12 root that
tests/clean-root.sh prepares): an overlay mount (lower: that root, upper: a
directory of the test's) in a private mount namespace, entered with chroot.
apt, dpkg, a2enmod and httpd run in it for real; whatever they change lands
in the upper directory and disappears with it. Needs root."""

import os
import shutil
import signal
import subprocess
import time


class OverlayRoot:
    def __init__(self, base, lower):
        self.base = base
        self.lower = lower
        self.upper = os.path.join(base, "upper")
        self.work = os.path.join(base, "work")
        self.merged = os.path.join(base, "merged")
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, exist_ok=True)
        # Debian's way of keeping maintainer scripts in a chroot from starting,
        # restarting or reloading services: a policy-rc.d that refuses. This
        # one also records what was asked, for tests to check.
        policy = os.path.join(self.upper, "usr", "sbin", "policy-rc.d")
        os.makedirs(os.path.dirname(policy), exist_ok=True)
        with open(policy, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> /var/log/policy-rc.d.log\nexit 101\n')
        os.chmod(policy, 0o755)

    def _mount_script(self):
        # The real /dev, /proc and /sys; a fresh /run, as a booted system has.
        m = self.merged
        return (f"set -e; mount -t overlay overlay -o lowerdir={self.lower},upperdir={self.upper},"
                f"workdir={self.work} {m}; mount --rbind /dev {m}/dev; "
                f"mount -t proc proc {m}/proc; mount --rbind /sys {m}/sys; "
                f"mount -t tmpfs -o mode=0755 tmpfs {m}/run; "
                f"mkdir -m 1777 {m}/run/lock; ")

    def _command(self, script, offline=False, loopback=False):
        # offline: a network namespace of its own too, with nothing but a
        # loopback device (down unless `loopback`): apt there can use its
        # cache only, and a server there can bind any port without meeting
        # the host's.
        lo_up = "ip link set lo up; " if loopback else ""
        return ["unshare", "--mount", "--propagation", "private"] + (["--net"] if offline else []) + [
                "sh", "-c",
                self._mount_script() + lo_up + f'exec chroot {self.merged} /bin/sh -c "$1"',
                "overlay-root", self._inside(script)]

    @staticmethod
    def _inside(script):
        # chroot keeps the caller's working directory, which lies outside.
        return "cd / && " + script

    def put(self, host_path, path_inside):
        """Copies a host file or directory into the copy before it is entered
        (written straight into the upper layer)."""
        target = os.path.join(self.upper, path_inside.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.isdir(host_path):
            shutil.copytree(host_path, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(host_path, target)

    def service_actions(self):
        """What maintainer scripts asked invoke-rc.d to do, one "service action"
        line each (invoke-rc.d writes "(action)" for a service not enabled in
        the current runlevel, as in a chroot: the parentheses are dropped)."""
        try:
            with open(self.path("/var/log/policy-rc.d.log")) as f:
                return [line.replace("(", "").replace(")", "") for line in f.read().splitlines()]
        except FileNotFoundError:
            return []

    def put_source_tree(self, source_dir, path_inside):
        """Copies a source tree in, without VCS data and build outputs."""
        target = os.path.join(self.upper, path_inside.lstrip("/"))
        os.makedirs(target, exist_ok=True)
        pack = subprocess.Popen(["tar", "-C", source_dir, "--exclude=./.git", "--exclude=./build",
                                 "--exclude=./dist", "--exclude=./obj-*", "-cf", "-", "."],
                                stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", target, "-xf", "-"], stdin=pack.stdout, check=True,
                       timeout=120)
        pack.stdout.close()
        if pack.wait(timeout=60) != 0:
            raise RuntimeError(f"tar of {source_dir} failed")

    def path(self, path_inside):
        """The host path of a file the copy wrote (its upper layer); read it
        only when nothing runs in the copy."""
        return os.path.join(self.upper, path_inside.lstrip("/"))

    def run(self, script, timeout=120, env=None):
        """Runs a shell script in fresh mount and network namespaces (no
        network at all) with the copy mounted; returns the CompletedProcess
        (stdout and stderr as text)."""
        return subprocess.run(self._command(script, offline=True), capture_output=True,
                              text=True, timeout=timeout, env=env)

    def start(self, script, env=None, stdout=None, own_network=False):
        """Starts a long-running script; its PID is the process the script
        finally execs (unshare, sh and chroot all exec in turn). With
        `own_network`, in a network namespace of its own with only a
        loopback device, as a host of its own."""
        return subprocess.Popen(self._command(script, offline=own_network, loopback=own_network),
                                stdout=stdout, stderr=subprocess.STDOUT, env=env)

    def run_beside(self, pid, script, timeout=120, env=None):
        """Runs a script in the mount and network namespaces of a process
        started with start(), where the copy is already mounted."""
        return subprocess.run(["nsenter", "-t", str(pid), "-m", "-n", "chroot", self.merged,
                               "/bin/sh", "-c", self._inside(script)],
                              capture_output=True, text=True, timeout=timeout, env=env)

    def kill_processes(self):
        """SIGKILLs, by PID, every process whose root directory is this copy
        (what a test started there and left running, if it failed), and
        waits until they are gone, so that the copy is unmounted."""
        deadline = time.monotonic() + 10
        while True:
            pids = []
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    root = os.readlink(f"/proc/{entry}/root")
                except OSError:
                    continue
                if root == self.merged or root.startswith(self.merged + "/"):
                    pids.append(int(entry))
            if not pids or time.monotonic() > deadline:
                return pids
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)
