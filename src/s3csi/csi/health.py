"""The readiness checks CSI Probe runs (:class:`s3csi.csi.identity.Readiness`), each None when it holds or
the reason it does not.

- every mode: the CSI socket is still the one this server listens on. kubelet and the sidecars connect to
  it by path; once the file is removed or replaced (a second driver started on the same endpoint, a
  host-path volume cleaned), no new caller reaches this server, which must then be restarted.
- controller mode: the S3 endpoint answers (:func:`s3csi.s3.reachability.endpoint_problem`), as
  CreateVolume and DeleteVolume need it.
- node mode: the Mountpoint Pod runtime is usable (:mod:`s3csi.podmounter.health`).
"""

from __future__ import annotations

import os
import stat

from s3csi.metrics.endpoint import HealthCheck


def socket_check(path: str) -> HealthCheck:
    """A check that ``path`` stays the socket it is now (the server's, just bound)."""
    st = os.lstat(path)
    identity = (st.st_dev, st.st_ino)

    async def check() -> str | None:
        return socket_problem(path, identity)

    return check


def socket_problem(path: str, identity: tuple[int, int]) -> str | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"the CSI socket {path} was removed: kubelet and the sidecars cannot reach this plugin"
    except OSError as exc:
        return f"the CSI socket {path} cannot be checked: {exc.strerror}"
    if not stat.S_ISSOCK(st.st_mode) or (st.st_dev, st.st_ino) != identity:
        return f"the CSI socket {path} was replaced: callers reach another file, not this plugin"
    return None
