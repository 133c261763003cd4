"""The flag specs of ``s3csi mount`` are the one contract: its command line, the file system's settings and
the volume policy agree with them, value by value, and no other module writes a range, a default or a
pattern."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from s3csi.errors import InvalidArgument
from s3csi.fs import cli as fs_cli
from s3csi.fs.settings import FsSettings, build_settings
from s3csi.mountflags import (
    BY_NAME,
    COMMAND_WORDS,
    FLAGS,
    MAX_TTL_S,
    MOUNT_S3_ONLY,
    PATTERNS,
    PV_SYNTAX,
    RANGES,
    SSE_TYPES,
    TTL_WORDS,
    FlagSpec,
    MiB,
    PvStance,
    ValueKind,
)
from s3csi.volume.options import ALLOWED_OPTIONS, DENIED_OPTIONS, DROPPED_OPTIONS, MountOptions

SRC = Path(__file__).resolve().parents[2] / "src" / "s3csi"
SPEC_MODULE = SRC / "mountflags.py"

# Values of the non-numeric kinds, and whether the spec's kind takes them (for every consumer alike).
_SAMPLES: dict[ValueKind, list[tuple[str, bool]]] = {
    ValueKind.REGION: [("eu-west-1", True), ("garage", True), ("-", False), ("-eu", False), ("EU", False)],
    ValueKind.STORAGE_CLASS: [("STANDARD_IA", True), ("GLACIER_IR", True), ("standard", False)],
    ValueKind.SSE: [*((sse, True) for sse in SSE_TYPES), ("aws:kms:other", False), ("none", False)],
    ValueKind.PREFIX: [("a/b/", True), ("team-a/", True)],
    ValueKind.KMS_KEY_ID: [("alias/s3", True), ("arn:aws:kms:us-east-1:111122223333:key/ab-12", True)],
    ValueKind.USER_AGENT_PREFIX: [("team-a/1.0", True)],
    ValueKind.URL: [("http://127.0.0.1:9000", True), ("localhost:9000", False)],
    ValueKind.DIRECTORY: [("/var/cache/s3", True), ("", False)],
    ValueKind.TTL: [*((word, True) for word in TTL_WORDS), ("later", False)],
    ValueKind.BUCKET_TYPE: [("general-purpose", True), ("directory", True), ("outposts", False)],
    ValueKind.ACCOUNT_ID: [("111122223333", True), ("1111", False), ("11112222333a", False)],
    ValueKind.UPLOAD_CHECKSUMS: [("crc32c", True), ("off", True), ("crc32", False)],
    ValueKind.PROFILE: [("team-a", True), ("a b", False)],
    ValueKind.DIRECTORY_BUCKET: [("cache--usw2-az1--x-s3", True), ("cache", False), ("a;b--x-s3", False)],
    ValueKind.METRICS_ADDRESS: [
        ("127.0.0.1:9813", True),
        (":0", True),
        ("unix:/run/s3csi/metrics.sock", True),
        ("unix:metrics.sock", False),
        ("9813", False),
        ("host:99999", False),
    ],
}
# What some flags need beside them to be valid at all (the rules between flags, not the flag's own range):
# (name, value or None for a switch). A companion a volume may not set (--cache) is the driver's to give.
_COMPANIONS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "max-cache-size": (("cache", "/var/cache/s3"),),
    "sse-kms-key-id": (("sse", "aws:kms"),),
    "staged-writes": (("cache", "/var/cache/s3"),),
    "max-staged-file-size": (("staged-writes", None), ("cache", "/var/cache/s3")),
}


def _companions(spec: FlagSpec, *, in_volume: bool) -> list[tuple[str, str | None]]:
    return [
        (name, value)
        for name, value in _COMPANIONS.get(spec.name, ())
        if (BY_NAME[name].pv is PvStance.ALLOWED) is in_volume
    ]


def _companion_argv(spec: FlagSpec) -> list[str]:
    return _driver_argv(spec) + [
        word
        for name, value in _companions(spec, in_volume=True)
        for word in ([f"--{name}"] if value is None else [f"--{name}", value])
    ]


def _companion_entries(spec: FlagSpec) -> list[str]:
    return [name if value is None else f"{name}={value}" for name, value in _companions(spec, in_volume=True)]


def _driver_argv(spec: FlagSpec) -> list[str]:
    """The companions only the driver gives (a volume may not), beside what the volume policy lets through."""
    return [word for name, value in _companions(spec, in_volume=False) for word in (f"--{name}", value or "")]


def _numeric_samples(spec: FlagSpec) -> list[tuple[str, bool]]:
    """Both ends of the spec's range, and one step outside each."""
    assert spec.range is not None
    low, high = spec.range
    write = (lambda n: format(n, "03o")) if spec.kind is ValueKind.MODE else str
    return [(write(low), True), (write(high), True), (write(high + 1), False), (write(low - 1), False)]


def _cases() -> list[object]:
    cases: list[object] = []
    for spec in FLAGS:
        if spec.kind is ValueKind.FLAG:
            cases.append(pytest.param(spec, None, True, id=spec.name))
            continue
        samples = _numeric_samples(spec) if spec.range is not None else []
        samples += _SAMPLES.get(spec.kind, [])
        assert samples, f"no sample values for {spec.option}"
        cases += [pytest.param(spec, text, valid, id=f"{spec.name}={text}") for text, valid in samples]
    return cases


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s3csi mount", exit_on_error=False)
    fs_cli.add_arguments(parser)
    return parser


# Flags that only some buckets take, and a bucket that takes them.
_BUCKETS = {"incremental-upload": "data--usw2-az1--x-s3"}


def _settings(*argv: str, bucket: str = "bucket") -> FsSettings:
    args = _parser().parse_args([bucket, "/mnt/s3", *argv])
    return build_settings(fs_cli.flags_from(args), default_uid=1000, default_gid=1000)


@pytest.mark.parametrize(("spec", "text", "valid"), _cases())
def test_cli_settings_and_volume_policy_agree_with_the_spec(
    spec: FlagSpec, text: str | None, valid: bool
) -> None:
    argv = [*_companion_argv(spec), spec.option if text is None else f"{spec.option}={text}"]
    bucket = _BUCKETS.get(spec.name, "bucket")
    # The command line and the settings: exactly the spec's values.
    if valid:
        cli_settings = _settings(*argv, bucket=bucket)
    else:
        with pytest.raises(InvalidArgument, match=re.escape(spec.option)):
            _settings(*argv, bucket=bucket)

    # The volume policy: the spec's values if the spec allows the flag in a PV; its reason if it denies it.
    entry = spec.name if text is None else f"{spec.name}={text}"
    if spec.pv is PvStance.DENIED:
        with pytest.raises(InvalidArgument) as denied:
            MountOptions.parse([entry])
        assert f"{spec.option} is not allowed: {spec.why}" in str(denied.value)
    elif spec.pv is PvStance.DROPPED:
        assert MountOptions.parse([entry]).to_args() == ()
    elif not valid:
        with pytest.raises(InvalidArgument, match=re.escape(spec.option)):
            MountOptions.parse([entry])
    else:
        # What the policy lets through, in its canonical spelling, means to `s3csi mount` what the value did.
        pv_args = MountOptions.parse([*_companion_entries(spec), entry]).to_args()
        assert _settings(*_driver_argv(spec), *pv_args, bucket=bucket) == cli_settings


@pytest.mark.parametrize("spec", [spec for spec in FLAGS if spec.default is not None], ids=lambda s: s.name)
def test_an_absent_flag_takes_the_specs_default(spec: FlagSpec) -> None:
    settings = _settings()
    field = {"metadata-ttl": "metadata_ttl_s", "part-size": "read_part_size"}.get(spec.name, spec.dest)
    unit = {"max-staged-file-size": MiB}.get(spec.name, 1)  # the settings hold bytes
    assert getattr(settings, field) == spec.default * unit


@pytest.mark.parametrize("spec", [spec for spec in FLAGS if spec.default_from], ids=lambda s: s.name)
def test_an_absent_flag_follows_the_flag_the_spec_names(spec: FlagSpec) -> None:
    assert spec.default_from is not None
    source = BY_NAME[spec.default_from]
    assert source.kind in (spec.kind, ValueKind.PART_SIZE)
    value = "30" if source.kind is ValueKind.TTL else str(RANGES[ValueKind.PART_SIZE][0])
    settings = _settings(source.option, value)
    field = {"negative-metadata-ttl": "negative_metadata_ttl_s"}.get(spec.name, spec.dest)
    assert getattr(settings, field) == int(value)


def test_the_command_line_has_exactly_the_specs_flags() -> None:
    options = {o for action in _parser()._actions for o in action.option_strings} - {"-h", "--help"}
    specs = {spec.option for spec in FLAGS} | {f"-{spec.short}" for spec in FLAGS if spec.short}
    assert options == specs


def test_the_volume_policy_lists_are_the_specs_stances() -> None:
    assert set(ALLOWED_OPTIONS) == {spec.name for spec in FLAGS if spec.pv is PvStance.ALLOWED}
    assert all(ALLOWED_OPTIONS[spec.name] is spec.kind for spec in FLAGS if spec.name in ALLOWED_OPTIONS)
    denied = {spec.name: spec.why for spec in FLAGS if spec.pv is PvStance.DENIED}
    assert dict(DENIED_OPTIONS) == {**denied, **MOUNT_S3_ONLY}
    dropped = {spec.name for spec in FLAGS if spec.pv is PvStance.DROPPED}
    assert set(DROPPED_OPTIONS) == dropped | set(COMMAND_WORDS)
    assert all(spec.why for spec in FLAGS if spec.pv is not PvStance.ALLOWED), "a refusal needs its reason"
    assert not set(MOUNT_S3_ONLY) & set(BY_NAME)


def test_ttl_words_are_inside_the_ttl_range() -> None:
    assert set(TTL_WORDS.values()) <= {1.0, float(MAX_TTL_S)}


# --- The spec module is the only place a range, a default or a pattern is written ---------------------------

# Literals that are a flag's range or default, and the other modules' lines that hold one for another reason.
_LIMITS = re.compile(r"2 ?\*\* ?(?:31|32|40)\b|4294967\d{3}|2147483\d{3}|0o7(?:55|77)|0o644")
_NOT_A_FLAG = {
    ("fs/allocator.py", "MAX_THRESHOLD = 2**31 - 1"),  # glibc's M_MMAP_THRESHOLD limit (an int)
    ("fs/operations.py", "STATFS_BLOCKS = 2**40"),  # what statfs reports, not a flag
    ("fs/operations.py", "STATFS_FILES = 2**32"),
    ("volume/quantity.py", '"Ti": 2**40,'),  # a Kubernetes quantity suffix, not a flag
    ("fs/attributes.py", "PERMISSION_BITS = 0o777"),  # st_mode's permission bits (POSIX), not a mode flag
    ("fs/operations.py", "SYMLINK_MODE = stat.S_IFLNK | 0o777"),  # a symlink's mode is always lrwxrwxrwx
    ("demo/local_node.py", "self.base.chmod(0o755)"),  # the demo's own directories on disk
    ("demo/local_node.py", "self.kubelet_dir.mkdir(mode=0o755)"),
}
_FLAG_VALUES = re.compile(
    r"\b(?:5 \* [MG]iB|64 \* KiB|8 \* MiB|365 \* 24)\b|\"(?:minimal|indefinite|aws:kms:dsse|AES256)\""
    r"|\[a-z0-9-\]\{1,64\}"  # the region pattern fs/settings.py used to have
)


def _source_lines() -> list[tuple[str, int, str]]:
    lines = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SPEC_MODULE or "proto" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            lines.append((str(path.relative_to(SRC)), number, line))
    return lines


def test_no_other_module_writes_a_uid_limit_a_mode_or_a_size_limit() -> None:
    found = [
        f"{path}:{number}: {line.strip()}"
        for path, number, line in _source_lines()
        if _LIMITS.search(line) and (path, line.strip()) not in _NOT_A_FLAG
    ]
    assert found == [], "write these in src/s3csi/mountflags.py and import them"


def test_no_other_module_writes_a_flag_value_or_a_spec_pattern() -> None:
    patterns = {pattern.pattern for pattern in (*PATTERNS.values(), *PV_SYNTAX.values())}
    found = [
        f"{path}:{number}: {line.strip()}"
        for path, number, line in _source_lines()
        if _FLAG_VALUES.search(line) or any(pattern in line for pattern in patterns)
    ]
    assert found == [], "write these in src/s3csi/mountflags.py and import them"


def test_no_flag_of_s3csi_mount_is_declared_by_hand() -> None:
    # fs/ (the command line and the settings) names no flag itself: it iterates or looks up the specs.
    # Elsewhere, other commands' own flags may share a name with one of s3csi mount's.
    own_flags_of_other_commands = {
        ("csi/main.py", "--debug"),
        ("podmounter/mounter.py", "--debug"),
        ("podmounter/mounter.py", "--metrics-address"),  # the driver's choice, with unix:NAME in the comm dir
        ("admission/cli.py", "--debug"),
        ("ownership/cli.py", "--read-only"),
    }
    options = {spec.option for spec in FLAGS} | {f"-{spec.short}" for spec in FLAGS if spec.short}
    literal = re.compile(r"\"(-[-\w]*)\"")
    declared = re.compile(r"add_argument\(\s*\"(-[-\w]*)\"")
    found = [
        f"{path}:{number}: {line.strip()}"
        for path, number, line in _source_lines()
        if (path.startswith("fs/") and options & set(literal.findall(line)))
        or any(
            option in options and (path, option) not in own_flags_of_other_commands
            for option in declared.findall(line)
        )
    ]
    assert found == []
