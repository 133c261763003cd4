"""Property-based fuzzing of what a CSI caller controls: the request parsing of the CSI services
(csi/requests.py, csi/node.py ``publish_spec``, csi/controller.py ``check_mount_options``, the
provisioning plan and volume ids), volume attributes (volume/context.py) and mount options
(volume/options.py). docs/security.md, "Hostile input".

The two parsers facing the CSI caller directly, NodePublishVolume's request and the mount options, get
10,000 generated cases each (``FUZZ``); the properties of the parts they are built from get 2,000
(``PROPERTY``), which keeps the whole file to about a minute. All run over pure functions (no I/O):

- any input → a value, or one of the project's errors (:class:`~s3csi.errors.S3csiError`, which the
  one interceptor maps to a CSI status code); never another exception, which would reach kubelet as
  INTERNAL with a traceback, and never a hang;
- valid input → parsing what was rendered gives the same value back.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3csi.csi.controller import check_mount_options
from s3csi.csi.node import publish_spec
from s3csi.csi.proto import csi_pb2
from s3csi.csi.requests import secret_credentials, volume_capabilities
from s3csi.errors import InvalidArgument, S3csiError
from s3csi.provisioning.naming import ProvisioningMode, VolumeId
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.volume import context
from s3csi.volume.context import AuthenticationSource, VolumeContext, normalise_prefix
from s3csi.volume.options import MAX_ID, MountOptions
from tests.unit.volume_strategies import any_entries, option_name, valid_entries

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
FUZZ = settings(max_examples=10_000, deadline=None, suppress_health_check=_HEALTH)
PROPERTY = settings(max_examples=2_000, deadline=None, suppress_health_check=_HEALTH)
KUBELET_DIR = "/var/lib/kubelet"

# Protobuf strings are UTF-8: a lone surrogate cannot even be put in a request, so none is generated.
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
HOSTILE = st.one_of(
    TEXT,
    st.sampled_from(
        ["", " ", "\n", "\x00", "..", "../../etc", "-1", "2147483648", "1;rm -rf /", "$(id)", "a,b", "é" * 70]
    ),
)
IDS = st.one_of(
    st.integers(-2, 2**33).map(str),
    st.sampled_from(["0", "00", "1001", str(MAX_ID), "+1", " 1", "1e3"]),
    TEXT,
)


def utf8(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


MOUNT_FLAGS = st.lists(any_entries.map(utf8), max_size=6)
# Valid values built from alphabets rather than regular expressions: st.from_regex is five times slower.
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
BUCKETS = st.text(f"{_LOWER}-", min_size=1, max_size=20).map(lambda middle: f"b{middle}0")
PREFIXES = st.lists(st.text("abcxyz0189=_-", min_size=1, max_size=6), min_size=1, max_size=3).map(
    lambda segments: "/".join(segments) + "/"
)
REGIONS = st.text(f"{_LOWER}-", max_size=15).map(lambda rest: f"r{rest}")
ROLE_ARNS = st.builds(
    lambda account, role: f"arn:aws:iam::{account:012d}:role/{role}",
    st.integers(0, 10**12 - 1),
    st.text("abcXYZ019_-", min_size=1, max_size=20),
)

ATTRIBUTE_VALUES: dict[str, st.SearchStrategy[str]] = {
    context.BUCKET_NAME: st.one_of(BUCKETS, HOSTILE),
    context.PREFIX: st.one_of(PREFIXES, HOSTILE),
    context.AUTHENTICATION_SOURCE: st.one_of(
        st.sampled_from([s.value for s in AuthenticationSource]), HOSTILE
    ),
    context.STS_REGION: st.one_of(REGIONS, HOSTILE),
    context.FS_USER: IDS,
    context.ROLE_ARN: st.one_of(ROLE_ARNS, HOSTILE),
    context.POD_NAMESPACE: HOSTILE,
    context.POD_NAME: HOSTILE,
    context.POD_UID: HOSTILE,
    context.SERVICE_ACCOUNT_NAME: HOSTILE,
    context.SERVICE_ACCOUNT_TOKENS: HOSTILE,
}
VOLUME_CONTEXTS = st.builds(
    lambda known, other: {**other, **known},
    st.fixed_dictionaries({}, optional=ATTRIBUTE_VALUES),
    st.dictionaries(TEXT, TEXT, max_size=3),
)


@st.composite
def valid_volume_contexts(draw: st.DrawFn) -> VolumeContext:
    return VolumeContext(
        bucket_name=draw(BUCKETS),
        prefix=normalise_prefix(draw(st.one_of(st.just(""), PREFIXES))),
        authentication_source=draw(st.sampled_from(AuthenticationSource)),
        sts_region=draw(st.none() | REGIONS),
        fs_user=draw(st.none() | st.integers(0, MAX_ID)),
        role_arn=draw(st.none() | ROLE_ARNS),
    )


SECRETS = st.fixed_dictionaries(
    {},
    optional={
        "access_key_id": HOSTILE,
        "secret_access_key": HOSTILE,
        "session_token": HOSTILE,
        "acess_key": HOSTILE,
    },
)


@st.composite
def capabilities(draw: st.DrawFn) -> csi_pb2.VolumeCapability:
    capability = csi_pb2.VolumeCapability()
    access_type = draw(st.sampled_from(["mount", "block", "none"]))
    if access_type == "mount":
        capability.mount.mount_flags.extend(draw(MOUNT_FLAGS))
        capability.mount.volume_mount_group = draw(st.one_of(st.just(""), IDS))
        capability.mount.fs_type = draw(st.sampled_from(["", "ext4", "fuse"]))
    elif access_type == "block":
        capability.block.SetInParent()
    if draw(st.booleans()):
        capability.access_mode.mode = draw(st.integers(-3, 12))
    return capability


TARGETS = st.one_of(
    HOSTILE,
    st.builds(
        lambda pod, name, tail: f"{KUBELET_DIR}/pods/{pod}/volumes/kubernetes.io~csi/{name}/mount{tail}",
        TEXT,
        TEXT,
        st.sampled_from(["", "/", "/..", "/../../../../etc"]),
    ),
)


def parses_or_refuses(call: Any, *args: Any, **kwargs: Any) -> Any:
    """The value of ``call``, or None when it refused with one of the project's errors."""
    try:
        return call(*args, **kwargs)
    except S3csiError as refused:
        assert str(refused), "an error must say what was wrong"
        return None


# ---- mount options (volume/options.py) -------------------------------------------------------------


@FUZZ
@given(st.lists(st.one_of(any_entries, st.text(max_size=30)), max_size=8))
def test_any_mount_options_parse_or_are_refused_as_invalid_argument(entries: list[str]) -> None:
    try:
        MountOptions.parse(entries)
    except InvalidArgument:
        pass


@PROPERTY
@given(st.lists(valid_entries, max_size=5, unique_by=option_name))
def test_valid_mount_options_round_trip(entries: list[str]) -> None:
    options = MountOptions.parse(entries)
    assert MountOptions.parse(options.to_args()) == options
    assert MountOptions.parse(list(reversed(options.to_args()))).to_args() == options.to_args()


# ---- volume attributes (volume/context.py) ---------------------------------------------------------


@PROPERTY
@given(VOLUME_CONTEXTS)
def test_any_volume_context_parses_or_is_refused_as_invalid_argument(attributes: dict[str, str]) -> None:
    try:
        VolumeContext.parse(attributes)
    except InvalidArgument:
        pass


@PROPERTY
@given(valid_volume_contexts())
def test_valid_volume_contexts_round_trip(volume: VolumeContext) -> None:
    assert VolumeContext.parse(volume.to_volume_context()) == volume


# ---- CSI requests (csi/requests.py, csi/node.py, csi/controller.py, provisioning/) --------------------


@PROPERTY
@given(st.lists(capabilities(), max_size=3), VOLUME_CONTEXTS)
def test_any_volume_capabilities_parse_or_are_refused(
    requested: list[csi_pb2.VolumeCapability], attributes: dict[str, str]
) -> None:
    parsed = parses_or_refuses(volume_capabilities, requested)
    if parsed is None:
        return
    assert [c.mount_flags for c in parsed] == [tuple(r.mount.mount_flags) for r in requested]
    volume = parses_or_refuses(VolumeContext.parse, attributes)
    if volume is not None:
        parses_or_refuses(check_mount_options, parsed, volume)


@PROPERTY
@given(SECRETS)
def test_any_secrets_parse_or_are_refused_without_echoing_a_value(secrets: dict[str, str]) -> None:
    try:
        credentials = secret_credentials(secrets)
    except InvalidArgument as refused:
        for key in ("secret_access_key", "session_token"):
            value = secrets.get(key, "")
            if len(value) >= 8 and value not in "secret_access_key session_token access_key_id":
                assert value not in str(refused)
        return
    if credentials is not None:
        assert credentials.secret_access_key == secrets["secret_access_key"]


@st.composite
def node_publish_requests(draw: st.DrawFn) -> csi_pb2.NodePublishVolumeRequest:
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=draw(HOSTILE),
        target_path=draw(TARGETS),
        volume_capability=draw(st.none() | capabilities()),
        readonly=draw(st.booleans()),
        volume_context=draw(VOLUME_CONTEXTS),
        secrets=draw(SECRETS),
    )


@FUZZ
@given(node_publish_requests())
def test_any_node_publish_request_parses_or_is_refused(request: csi_pb2.NodePublishVolumeRequest) -> None:
    spec = parses_or_refuses(publish_spec, request, KUBELET_DIR)
    if spec is not None:
        assert spec.volume_id == request.volume_id and spec.target_path == request.target_path
        assert spec.target_path.startswith(f"{KUBELET_DIR}/") and "/../" not in f"{spec.target_path}/"
        assert spec.context == VolumeContext.parse(request.volume_context)
        assert spec.mount.read_only or not request.readonly


@PROPERTY
@given(
    name=HOSTILE,
    parameters=st.fixed_dictionaries(
        {},
        optional={
            "provisioningMode": st.one_of(st.sampled_from([m.value for m in ProvisioningMode]), HOSTILE),
            **{
                key: value
                for key, value in ATTRIBUTE_VALUES.items()
                if key
                in (
                    context.BUCKET_NAME,
                    context.AUTHENTICATION_SOURCE,
                    context.STS_REGION,
                    context.FS_USER,
                    context.ROLE_ARN,
                )
            },
            "csi.storage.k8s.io/pvc/name": HOSTILE,
            "colour": HOSTILE,
        },
    ),
    required_bytes=st.integers(-(2**63), 2**63 - 1),
    limit_bytes=st.integers(-(2**63), 2**63 - 1),
)
def test_any_create_volume_plan_is_made_or_refused(
    name: str, parameters: dict[str, str], required_bytes: int, limit_bytes: int
) -> None:
    capacity = parses_or_refuses(CapacityRange, required_bytes, limit_bytes)
    if capacity is None:
        return
    plan = parses_or_refuses(plan_volume, name, parameters, capacity)
    if plan is not None:
        assert VolumeId.parse(str(plan.volume_id)) == plan.volume_id
        assert len(str(plan.volume_id).encode()) <= 128
        assert VolumeContext.parse(plan.volume_context).to_volume_context() == plan.volume_context


@PROPERTY
@given(
    st.one_of(
        HOSTILE, st.builds(lambda tag, rest: f"{tag}:{rest}", st.sampled_from(["bucket", "prefix"]), TEXT)
    )
)
def test_any_volume_id_parses_to_a_volume_or_none(volume_id: str) -> None:
    parsed = VolumeId.parse(volume_id)
    if parsed is not None:
        assert str(parsed) == volume_id
