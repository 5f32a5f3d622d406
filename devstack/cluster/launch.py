"""Start one container's process: private mount namespace, bind mounts, user, then exec.

The kubelet runs this file as a script (`python -I -S launch.py plan.json`): it is single-threaded
and imports only the standard library, so it is cheap and safe to do mount and setuid work in.
On any failure before exec it records the reason in the plan's `start_error` file and exits 128,
which the kubelet reports as a container that could not start.
"""

import ctypes
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount_point(source, target):
    """Create the mount point on the host when missing: a file for a file, else a directory."""
    if os.path.lexists(target):
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


def _bind(source, target, read_only):
    _mount_point(source, target)
    _check(libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None), f"mount {target}")
    if read_only:
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        _check(libc.mount(b"none", target.encode(), None, flags, None), f"remount {target} read-only")


def main(plan_path):
    with open(plan_path) as fh:
        plan = json.load(fh)
    # Hold every source (and the error file's directory) by descriptor before mounting anything: a
    # volume mounted on a parent of the state directory (an emptyDir on /tmp) would hide them.
    error_dir = os.open(os.path.dirname(plan["start_error"]), os.O_PATH | os.O_DIRECTORY)
    try:
        _check(libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        # Parents before children, so a mount inside another volume's mount path lands on top.
        mounts = sorted(plan["mounts"], key=lambda m: m[1].rstrip("/").count("/"))
        # The "image" is this machine's own tree (the interpreter, the project): a volume mounted
        # over one of its parents (an emptyDir on /tmp while the project lives under /tmp) would
        # hide it, so such a path is bound back inside the volume, as an image's files would be.
        targets = [target.rstrip("/") for _, target, _ in mounts]
        hidden = [path for path in plan.get("image", [])
                  if any(path.startswith(target + "/") for target in targets)]
        held = [os.open(source, os.O_PATH) for source, _, _ in mounts]
        held_image = [os.open(path, os.O_PATH) for path in hidden]
        for fd, (_, target, read_only) in zip(held, mounts, strict=True):
            _bind(f"/proc/self/fd/{fd}", target, read_only)
        for fd, path in zip(held_image, hidden, strict=True):
            _bind(f"/proc/self/fd/{fd}", path, False)
        for fd in held + held_image:
            os.close(fd)
        if plan.get("gid") is not None:
            os.setgroups(plan.get("groups", []))
            os.setgid(plan["gid"])
        if plan.get("uid") is not None:
            os.setuid(plan["uid"])
        os.chdir(plan["cwd"])
        argv = plan["argv"]
        try:
            os.execvpe(argv[0], argv, plan["env"])
        except FileNotFoundError:
            raise OSError(2, f'exec: "{argv[0]}": executable file not found in $PATH') from None
    except OSError as error:
        message = error.strerror if error.strerror else str(error)
        name = os.path.basename(plan["start_error"])
        with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=error_dir), "w") as fh:
            fh.write(message)
        sys.stderr.write(f"container start failed: {message}\n")
        sys.exit(128)


if __name__ == "__main__":
    main(sys.argv[1])
