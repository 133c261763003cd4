"""The generated CSI stubs against the spec's wire contract (CSI v1.12.0 csi.proto): package, services,
and every field s3csi reads or writes, by name, number, type and label.

The whole of proto/csi.proto was checked once against a protoc-generated descriptor of the published
csi.proto (every serialized offset and option identical); this table keeps the parts we use from
drifting.
"""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor

from s3csi.csi.proto import csi_pb2

T = FieldDescriptor
STRING, BOOL, INT64, INT32, MESSAGE, ENUM = (
    T.TYPE_STRING,
    T.TYPE_BOOL,
    T.TYPE_INT64,
    T.TYPE_INT32,
    T.TYPE_MESSAGE,
    T.TYPE_ENUM,
)
ONE, MANY = "optional", "repeated"

FIELDS = [
    # (message, field, number, type, label, message or enum type)
    ("GetPluginInfoResponse", "name", 1, STRING, ONE, None),
    ("GetPluginInfoResponse", "vendor_version", 2, STRING, ONE, None),
    ("GetPluginInfoResponse", "manifest", 3, MESSAGE, MANY, "csi.v1.GetPluginInfoResponse.ManifestEntry"),
    ("GetPluginCapabilitiesResponse", "capabilities", 1, MESSAGE, MANY, "csi.v1.PluginCapability"),
    ("PluginCapability", "service", 1, MESSAGE, ONE, "csi.v1.PluginCapability.Service"),
    ("PluginCapability", "volume_expansion", 2, MESSAGE, ONE, "csi.v1.PluginCapability.VolumeExpansion"),
    ("PluginCapability.Service", "type", 1, ENUM, ONE, "csi.v1.PluginCapability.Service.Type"),
    ("ProbeResponse", "ready", 1, MESSAGE, ONE, "google.protobuf.BoolValue"),
    ("CreateVolumeRequest", "name", 1, STRING, ONE, None),
    ("CreateVolumeRequest", "capacity_range", 2, MESSAGE, ONE, "csi.v1.CapacityRange"),
    ("CreateVolumeRequest", "volume_capabilities", 3, MESSAGE, MANY, "csi.v1.VolumeCapability"),
    ("CreateVolumeRequest", "parameters", 4, MESSAGE, MANY, "csi.v1.CreateVolumeRequest.ParametersEntry"),
    ("CreateVolumeRequest", "secrets", 5, MESSAGE, MANY, "csi.v1.CreateVolumeRequest.SecretsEntry"),
    ("CreateVolumeRequest", "volume_content_source", 6, MESSAGE, ONE, "csi.v1.VolumeContentSource"),
    ("CreateVolumeRequest", "accessibility_requirements", 7, MESSAGE, ONE, "csi.v1.TopologyRequirement"),
    (
        "CreateVolumeRequest",
        "mutable_parameters",
        8,
        MESSAGE,
        MANY,
        "csi.v1.CreateVolumeRequest.MutableParametersEntry",
    ),
    ("CreateVolumeResponse", "volume", 1, MESSAGE, ONE, "csi.v1.Volume"),
    ("CapacityRange", "required_bytes", 1, INT64, ONE, None),
    ("CapacityRange", "limit_bytes", 2, INT64, ONE, None),
    ("Volume", "capacity_bytes", 1, INT64, ONE, None),
    ("Volume", "volume_id", 2, STRING, ONE, None),
    ("Volume", "volume_context", 3, MESSAGE, MANY, "csi.v1.Volume.VolumeContextEntry"),
    ("Volume", "content_source", 4, MESSAGE, ONE, "csi.v1.VolumeContentSource"),
    ("Volume", "accessible_topology", 5, MESSAGE, MANY, "csi.v1.Topology"),
    ("VolumeCapability", "block", 1, MESSAGE, ONE, "csi.v1.VolumeCapability.BlockVolume"),
    ("VolumeCapability", "mount", 2, MESSAGE, ONE, "csi.v1.VolumeCapability.MountVolume"),
    ("VolumeCapability", "access_mode", 3, MESSAGE, ONE, "csi.v1.VolumeCapability.AccessMode"),
    ("VolumeCapability.MountVolume", "fs_type", 1, STRING, ONE, None),
    ("VolumeCapability.MountVolume", "mount_flags", 2, STRING, MANY, None),
    ("VolumeCapability.MountVolume", "volume_mount_group", 3, STRING, ONE, None),
    ("VolumeCapability.AccessMode", "mode", 1, ENUM, ONE, "csi.v1.VolumeCapability.AccessMode.Mode"),
    ("DeleteVolumeRequest", "volume_id", 1, STRING, ONE, None),
    ("DeleteVolumeRequest", "secrets", 2, MESSAGE, MANY, "csi.v1.DeleteVolumeRequest.SecretsEntry"),
    ("ValidateVolumeCapabilitiesRequest", "volume_id", 1, STRING, ONE, None),
    (
        "ValidateVolumeCapabilitiesRequest",
        "volume_context",
        2,
        MESSAGE,
        MANY,
        "csi.v1.ValidateVolumeCapabilitiesRequest.VolumeContextEntry",
    ),
    ("ValidateVolumeCapabilitiesRequest", "volume_capabilities", 3, MESSAGE, MANY, "csi.v1.VolumeCapability"),
    (
        "ValidateVolumeCapabilitiesRequest",
        "parameters",
        4,
        MESSAGE,
        MANY,
        "csi.v1.ValidateVolumeCapabilitiesRequest.ParametersEntry",
    ),
    (
        "ValidateVolumeCapabilitiesRequest",
        "secrets",
        5,
        MESSAGE,
        MANY,
        "csi.v1.ValidateVolumeCapabilitiesRequest.SecretsEntry",
    ),
    (
        "ValidateVolumeCapabilitiesResponse",
        "confirmed",
        1,
        MESSAGE,
        ONE,
        "csi.v1.ValidateVolumeCapabilitiesResponse.Confirmed",
    ),
    ("ValidateVolumeCapabilitiesResponse", "message", 2, STRING, ONE, None),
    (
        "ValidateVolumeCapabilitiesResponse.Confirmed",
        "volume_capabilities",
        2,
        MESSAGE,
        MANY,
        "csi.v1.VolumeCapability",
    ),
    (
        "ControllerGetCapabilitiesResponse",
        "capabilities",
        1,
        MESSAGE,
        MANY,
        "csi.v1.ControllerServiceCapability",
    ),
    ("ControllerServiceCapability", "rpc", 1, MESSAGE, ONE, "csi.v1.ControllerServiceCapability.RPC"),
    ("ControllerServiceCapability.RPC", "type", 1, ENUM, ONE, "csi.v1.ControllerServiceCapability.RPC.Type"),
    ("NodePublishVolumeRequest", "volume_id", 1, STRING, ONE, None),
    (
        "NodePublishVolumeRequest",
        "publish_context",
        2,
        MESSAGE,
        MANY,
        "csi.v1.NodePublishVolumeRequest.PublishContextEntry",
    ),
    ("NodePublishVolumeRequest", "staging_target_path", 3, STRING, ONE, None),
    ("NodePublishVolumeRequest", "target_path", 4, STRING, ONE, None),
    ("NodePublishVolumeRequest", "volume_capability", 5, MESSAGE, ONE, "csi.v1.VolumeCapability"),
    ("NodePublishVolumeRequest", "readonly", 6, BOOL, ONE, None),
    ("NodePublishVolumeRequest", "secrets", 7, MESSAGE, MANY, "csi.v1.NodePublishVolumeRequest.SecretsEntry"),
    (
        "NodePublishVolumeRequest",
        "volume_context",
        8,
        MESSAGE,
        MANY,
        "csi.v1.NodePublishVolumeRequest.VolumeContextEntry",
    ),
    ("NodeUnpublishVolumeRequest", "volume_id", 1, STRING, ONE, None),
    ("NodeUnpublishVolumeRequest", "target_path", 2, STRING, ONE, None),
    ("NodeGetCapabilitiesResponse", "capabilities", 1, MESSAGE, MANY, "csi.v1.NodeServiceCapability"),
    ("NodeServiceCapability", "rpc", 1, MESSAGE, ONE, "csi.v1.NodeServiceCapability.RPC"),
    ("NodeServiceCapability.RPC", "type", 1, ENUM, ONE, "csi.v1.NodeServiceCapability.RPC.Type"),
    ("NodeGetInfoResponse", "node_id", 1, STRING, ONE, None),
    ("NodeGetInfoResponse", "max_volumes_per_node", 2, INT64, ONE, None),
    ("NodeGetInfoResponse", "accessible_topology", 3, MESSAGE, ONE, "csi.v1.Topology"),
    ("ListVolumesRequest", "max_entries", 1, INT32, ONE, None),
]

ENUMS = [
    (
        "PluginCapability.Service.Type",
        {
            "UNKNOWN": 0,
            "CONTROLLER_SERVICE": 1,
            "VOLUME_ACCESSIBILITY_CONSTRAINTS": 2,
            "GROUP_CONTROLLER_SERVICE": 3,
            "SNAPSHOT_METADATA_SERVICE": 4,
        },
    ),
    (
        "VolumeCapability.AccessMode.Mode",
        {
            "UNKNOWN": 0,
            "SINGLE_NODE_WRITER": 1,
            "SINGLE_NODE_READER_ONLY": 2,
            "MULTI_NODE_READER_ONLY": 3,
            "MULTI_NODE_SINGLE_WRITER": 4,
            "MULTI_NODE_MULTI_WRITER": 5,
            "SINGLE_NODE_SINGLE_WRITER": 6,
            "SINGLE_NODE_MULTI_WRITER": 7,
        },
    ),
    (
        "ControllerServiceCapability.RPC.Type",
        {"CREATE_DELETE_VOLUME": 1, "GET_SNAPSHOT": 15, "MODIFY_VOLUME": 14},
    ),
    ("NodeServiceCapability.RPC.Type", {"STAGE_UNSTAGE_VOLUME": 1, "VOLUME_MOUNT_GROUP": 6}),
]

SERVICES = {
    "Identity": ["GetPluginInfo", "GetPluginCapabilities", "Probe"],
    "Controller": [
        "CreateVolume",
        "DeleteVolume",
        "ControllerPublishVolume",
        "ControllerUnpublishVolume",
        "ValidateVolumeCapabilities",
        "ListVolumes",
        "GetCapacity",
        "ControllerGetCapabilities",
        "CreateSnapshot",
        "DeleteSnapshot",
        "ListSnapshots",
        "GetSnapshot",
        "ControllerExpandVolume",
        "ControllerGetVolume",
        "ControllerModifyVolume",
    ],
    "GroupController": [
        "GroupControllerGetCapabilities",
        "CreateVolumeGroupSnapshot",
        "DeleteVolumeGroupSnapshot",
        "GetVolumeGroupSnapshot",
    ],
    "SnapshotMetadata": ["GetMetadataAllocated", "GetMetadataDelta"],
    "Node": [
        "NodeStageVolume",
        "NodeUnstageVolume",
        "NodePublishVolume",
        "NodeUnpublishVolume",
        "NodeGetVolumeStats",
        "NodeExpandVolume",
        "NodeGetCapabilities",
        "NodeGetInfo",
    ],
}


def message(path: str) -> object:
    descriptor = csi_pb2.DESCRIPTOR.message_types_by_name[path.split(".", maxsplit=1)[0]]
    for nested in path.split(".")[1:]:
        descriptor = descriptor.nested_types_by_name[nested]
    return descriptor


def test_package_and_file() -> None:
    assert csi_pb2.DESCRIPTOR.package == "csi.v1"
    assert csi_pb2.DESCRIPTOR.name == "csi.proto"


@pytest.mark.parametrize("case", FIELDS, ids=[f"{m}.{f}" for m, f, *_ in FIELDS])
def test_field_matches_the_spec(case: tuple[str, str, int, int, str, str | None]) -> None:
    message_name, field, number, type_, label, type_name = case
    descriptor = message(message_name).fields_by_name[field]  # type: ignore[attr-defined]
    assert (descriptor.number, descriptor.type) == (number, type_)
    assert descriptor.is_repeated == (label == MANY)
    target = descriptor.message_type or descriptor.enum_type
    assert (target.full_name if target else None) == type_name


@pytest.mark.parametrize(("enum_path", "values"), ENUMS)
def test_enum_values_match_the_spec(enum_path: str, values: dict[str, int]) -> None:
    *parents, name = enum_path.split(".")
    enum = message(".".join(parents)).enum_types_by_name[name]  # type: ignore[attr-defined]
    assert {n: enum.values_by_name[n].number for n in values} == values


@pytest.mark.parametrize(("service", "methods"), SERVICES.items())
def test_services_and_methods_match_the_spec(service: str, methods: list[str]) -> None:
    descriptor = csi_pb2.DESCRIPTOR.services_by_name[service]
    assert [m.name for m in descriptor.methods] == methods
    for method in descriptor.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"


def test_every_secrets_field_and_only_those_is_marked_csi_secret() -> None:
    marked: list[str] = []
    for descriptor in csi_pb2.DESCRIPTOR.message_types_by_name.values():
        for field in descriptor.fields:
            if field.GetOptions().Extensions[csi_pb2.csi_secret]:  # type: ignore[index]
                marked.append(f"{descriptor.name}.{field.name}")
    assert all(name.endswith(".secrets") for name in marked)
    assert len(marked) == 19
    assert {
        "CreateVolumeRequest.secrets",
        "DeleteVolumeRequest.secrets",
        "NodePublishVolumeRequest.secrets",
    } <= set(marked)


def test_option_extensions_have_the_spec_numbers() -> None:
    assert csi_pb2.csi_secret.number == 1059
    for extension in (
        csi_pb2.alpha_field,
        csi_pb2.alpha_enum,
        csi_pb2.alpha_enum_value,
        csi_pb2.alpha_message,
        csi_pb2.alpha_method,
        csi_pb2.alpha_service,
    ):
        assert extension.number == 1060
