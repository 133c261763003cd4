"""The fs.suid_dumpable rule of the local runtime (kernel/process.py): which values keep a starting
mounter out of reach of other uid-1000 processes."""

from __future__ import annotations

import pytest

from s3csi.errors import FailedPrecondition
from s3csi.kernel.process import check_suid_dumpable


@pytest.mark.parametrize("value", ["0\n", "2\n", "0"])
def test_values_that_start_a_mounter_non_dumpable_pass(value: str) -> None:
    check_suid_dumpable(value)


@pytest.mark.parametrize("value", ["1\n", "3", ""])
def test_any_other_value_is_refused_naming_the_fix(value: str) -> None:
    with pytest.raises(FailedPrecondition, match=r"sysctl -w fs\.suid_dumpable=0"):
        check_suid_dumpable(value)
