"""The generated CSI stubs against the spec's wire contract, CSI v1.12.0 (package csi.v1).

The tables below are the whole contract: every message (map entries aside) with every field in declaration
order as ``[repeated] type name = number [(oneof o)]``, every enum with every value, every service and
method, the fields marked ``csi_secret`` and the elements marked alpha. They were taken from the published
spec text (container-storage-interface/spec: csi.proto is generated from the ``protobuf`` blocks of spec.md;
compared at spec.md commit 01bfa04, after GetSnapshot was added and before the v1.12.0 release). v1.12.0
then made ControllerModifyVolume GA: its method, its two messages, MODIFY_VOLUME and the three
``mutable_parameters`` fields carry no alpha option here. Any edit to proto/csi.proto that changes the wire
contract or an option fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from s3csi.csi.proto import csi_pb2

SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_INT32: "int32",
}

# Every message: its fields in declaration order.
CONTRACT = {
    "GetPluginInfoRequest": (),
    "GetPluginInfoResponse": (
        "string name = 1",
        "string vendor_version = 2",
        "map<string, string> manifest = 3",
    ),
    "GetPluginCapabilitiesRequest": (),
    "GetPluginCapabilitiesResponse": ("repeated PluginCapability capabilities = 1",),
    "PluginCapability": (
        "PluginCapability.Service service = 1 (oneof type)",
        "PluginCapability.VolumeExpansion volume_expansion = 2 (oneof type)",
    ),
    "PluginCapability.Service": ("PluginCapability.Service.Type type = 1",),
    "PluginCapability.VolumeExpansion": ("PluginCapability.VolumeExpansion.Type type = 1",),
    "ProbeRequest": (),
    "ProbeResponse": ("google.protobuf.BoolValue ready = 1",),
    "CreateVolumeRequest": (
        "string name = 1",
        "CapacityRange capacity_range = 2",
        "repeated VolumeCapability volume_capabilities = 3",
        "map<string, string> parameters = 4",
        "map<string, string> secrets = 5",
        "VolumeContentSource volume_content_source = 6",
        "TopologyRequirement accessibility_requirements = 7",
        "map<string, string> mutable_parameters = 8",
    ),
    "VolumeContentSource": (
        "VolumeContentSource.SnapshotSource snapshot = 1 (oneof type)",
        "VolumeContentSource.VolumeSource volume = 2 (oneof type)",
    ),
    "VolumeContentSource.SnapshotSource": ("string snapshot_id = 1",),
    "VolumeContentSource.VolumeSource": ("string volume_id = 1",),
    "CreateVolumeResponse": ("Volume volume = 1",),
    "VolumeCapability": (
        "VolumeCapability.BlockVolume block = 1 (oneof access_type)",
        "VolumeCapability.MountVolume mount = 2 (oneof access_type)",
        "VolumeCapability.AccessMode access_mode = 3",
    ),
    "VolumeCapability.BlockVolume": (),
    "VolumeCapability.MountVolume": (
        "string fs_type = 1",
        "repeated string mount_flags = 2",
        "string volume_mount_group = 3",
    ),
    "VolumeCapability.AccessMode": ("VolumeCapability.AccessMode.Mode mode = 1",),
    "CapacityRange": (
        "int64 required_bytes = 1",
        "int64 limit_bytes = 2",
    ),
    "Volume": (
        "int64 capacity_bytes = 1",
        "string volume_id = 2",
        "map<string, string> volume_context = 3",
        "VolumeContentSource content_source = 4",
        "repeated Topology accessible_topology = 5",
    ),
    "TopologyRequirement": (
        "repeated Topology requisite = 1",
        "repeated Topology preferred = 2",
    ),
    "Topology": ("map<string, string> segments = 1",),
    "DeleteVolumeRequest": (
        "string volume_id = 1",
        "map<string, string> secrets = 2",
    ),
    "DeleteVolumeResponse": (),
    "ControllerPublishVolumeRequest": (
        "string volume_id = 1",
        "string node_id = 2",
        "VolumeCapability volume_capability = 3",
        "bool readonly = 4",
        "map<string, string> secrets = 5",
        "map<string, string> volume_context = 6",
    ),
    "ControllerPublishVolumeResponse": ("map<string, string> publish_context = 1",),
    "ControllerUnpublishVolumeRequest": (
        "string volume_id = 1",
        "string node_id = 2",
        "map<string, string> secrets = 3",
    ),
    "ControllerUnpublishVolumeResponse": (),
    "ValidateVolumeCapabilitiesRequest": (
        "string volume_id = 1",
        "map<string, string> volume_context = 2",
        "repeated VolumeCapability volume_capabilities = 3",
        "map<string, string> parameters = 4",
        "map<string, string> secrets = 5",
        "map<string, string> mutable_parameters = 6",
    ),
    "ValidateVolumeCapabilitiesResponse": (
        "ValidateVolumeCapabilitiesResponse.Confirmed confirmed = 1",
        "string message = 2",
    ),
    "ValidateVolumeCapabilitiesResponse.Confirmed": (
        "map<string, string> volume_context = 1",
        "repeated VolumeCapability volume_capabilities = 2",
        "map<string, string> parameters = 3",
        "map<string, string> mutable_parameters = 4",
    ),
    "ListVolumesRequest": (
        "int32 max_entries = 1",
        "string starting_token = 2",
    ),
    "ListVolumesResponse": (
        "repeated ListVolumesResponse.Entry entries = 1",
        "string next_token = 2",
    ),
    "ListVolumesResponse.VolumeStatus": (
        "repeated string published_node_ids = 1",
        "VolumeCondition volume_condition = 2",
    ),
    "ListVolumesResponse.Entry": (
        "Volume volume = 1",
        "ListVolumesResponse.VolumeStatus status = 2",
    ),
    "ControllerGetVolumeRequest": ("string volume_id = 1",),
    "ControllerGetVolumeResponse": (
        "Volume volume = 1",
        "ControllerGetVolumeResponse.VolumeStatus status = 2",
    ),
    "ControllerGetVolumeResponse.VolumeStatus": (
        "repeated string published_node_ids = 1",
        "VolumeCondition volume_condition = 2",
    ),
    "ControllerModifyVolumeRequest": (
        "string volume_id = 1",
        "map<string, string> secrets = 2",
        "map<string, string> mutable_parameters = 3",
    ),
    "ControllerModifyVolumeResponse": (),
    "GetCapacityRequest": (
        "repeated VolumeCapability volume_capabilities = 1",
        "map<string, string> parameters = 2",
        "Topology accessible_topology = 3",
    ),
    "GetCapacityResponse": (
        "int64 available_capacity = 1",
        "google.protobuf.Int64Value maximum_volume_size = 2",
        "google.protobuf.Int64Value minimum_volume_size = 3",
    ),
    "ControllerGetCapabilitiesRequest": (),
    "ControllerGetCapabilitiesResponse": ("repeated ControllerServiceCapability capabilities = 1",),
    "ControllerServiceCapability": ("ControllerServiceCapability.RPC rpc = 1 (oneof type)",),
    "ControllerServiceCapability.RPC": ("ControllerServiceCapability.RPC.Type type = 1",),
    "CreateSnapshotRequest": (
        "string source_volume_id = 1",
        "string name = 2",
        "map<string, string> secrets = 3",
        "map<string, string> parameters = 4",
    ),
    "CreateSnapshotResponse": ("Snapshot snapshot = 1",),
    "Snapshot": (
        "int64 size_bytes = 1",
        "string snapshot_id = 2",
        "string source_volume_id = 3",
        "google.protobuf.Timestamp creation_time = 4",
        "bool ready_to_use = 5",
        "string group_snapshot_id = 6",
    ),
    "DeleteSnapshotRequest": (
        "string snapshot_id = 1",
        "map<string, string> secrets = 2",
    ),
    "DeleteSnapshotResponse": (),
    "ListSnapshotsRequest": (
        "int32 max_entries = 1",
        "string starting_token = 2",
        "string source_volume_id = 3",
        "string snapshot_id = 4",
        "map<string, string> secrets = 5",
    ),
    "ListSnapshotsResponse": (
        "repeated ListSnapshotsResponse.Entry entries = 1",
        "string next_token = 2",
    ),
    "ListSnapshotsResponse.Entry": ("Snapshot snapshot = 1",),
    "GetSnapshotRequest": (
        "string snapshot_id = 1",
        "map<string, string> secrets = 2",
    ),
    "GetSnapshotResponse": ("Snapshot snapshot = 1",),
    "ControllerExpandVolumeRequest": (
        "string volume_id = 1",
        "CapacityRange capacity_range = 2",
        "map<string, string> secrets = 3",
        "VolumeCapability volume_capability = 4",
    ),
    "ControllerExpandVolumeResponse": (
        "int64 capacity_bytes = 1",
        "bool node_expansion_required = 2",
    ),
    "NodeStageVolumeRequest": (
        "string volume_id = 1",
        "map<string, string> publish_context = 2",
        "string staging_target_path = 3",
        "VolumeCapability volume_capability = 4",
        "map<string, string> secrets = 5",
        "map<string, string> volume_context = 6",
    ),
    "NodeStageVolumeResponse": (),
    "NodeUnstageVolumeRequest": (
        "string volume_id = 1",
        "string staging_target_path = 2",
    ),
    "NodeUnstageVolumeResponse": (),
    "NodePublishVolumeRequest": (
        "string volume_id = 1",
        "map<string, string> publish_context = 2",
        "string staging_target_path = 3",
        "string target_path = 4",
        "VolumeCapability volume_capability = 5",
        "bool readonly = 6",
        "map<string, string> secrets = 7",
        "map<string, string> volume_context = 8",
    ),
    "NodePublishVolumeResponse": (),
    "NodeUnpublishVolumeRequest": (
        "string volume_id = 1",
        "string target_path = 2",
    ),
    "NodeUnpublishVolumeResponse": (),
    "NodeGetVolumeStatsRequest": (
        "string volume_id = 1",
        "string volume_path = 2",
        "string staging_target_path = 3",
    ),
    "NodeGetVolumeStatsResponse": (
        "repeated VolumeUsage usage = 1",
        "VolumeCondition volume_condition = 2",
    ),
    "VolumeUsage": (
        "int64 available = 1",
        "int64 total = 2",
        "int64 used = 3",
        "VolumeUsage.Unit unit = 4",
    ),
    "VolumeCondition": (
        "bool abnormal = 1",
        "string message = 2",
    ),
    "NodeGetCapabilitiesRequest": (),
    "NodeGetCapabilitiesResponse": ("repeated NodeServiceCapability capabilities = 1",),
    "NodeServiceCapability": ("NodeServiceCapability.RPC rpc = 1 (oneof type)",),
    "NodeServiceCapability.RPC": ("NodeServiceCapability.RPC.Type type = 1",),
    "NodeGetInfoRequest": (),
    "NodeGetInfoResponse": (
        "string node_id = 1",
        "int64 max_volumes_per_node = 2",
        "Topology accessible_topology = 3",
    ),
    "NodeExpandVolumeRequest": (
        "string volume_id = 1",
        "string volume_path = 2",
        "CapacityRange capacity_range = 3",
        "string staging_target_path = 4",
        "VolumeCapability volume_capability = 5",
        "map<string, string> secrets = 6",
    ),
    "NodeExpandVolumeResponse": ("int64 capacity_bytes = 1",),
    "GroupControllerGetCapabilitiesRequest": (),
    "GroupControllerGetCapabilitiesResponse": ("repeated GroupControllerServiceCapability capabilities = 1",),
    "GroupControllerServiceCapability": ("GroupControllerServiceCapability.RPC rpc = 1 (oneof type)",),
    "GroupControllerServiceCapability.RPC": ("GroupControllerServiceCapability.RPC.Type type = 1",),
    "CreateVolumeGroupSnapshotRequest": (
        "string name = 1",
        "repeated string source_volume_ids = 2",
        "map<string, string> secrets = 3",
        "map<string, string> parameters = 4",
    ),
    "CreateVolumeGroupSnapshotResponse": ("VolumeGroupSnapshot group_snapshot = 1",),
    "VolumeGroupSnapshot": (
        "string group_snapshot_id = 1",
        "repeated Snapshot snapshots = 2",
        "google.protobuf.Timestamp creation_time = 3",
        "bool ready_to_use = 4",
    ),
    "DeleteVolumeGroupSnapshotRequest": (
        "string group_snapshot_id = 1",
        "repeated string snapshot_ids = 2",
        "map<string, string> secrets = 3",
    ),
    "DeleteVolumeGroupSnapshotResponse": (),
    "GetVolumeGroupSnapshotRequest": (
        "string group_snapshot_id = 1",
        "repeated string snapshot_ids = 2",
        "map<string, string> secrets = 3",
    ),
    "GetVolumeGroupSnapshotResponse": ("VolumeGroupSnapshot group_snapshot = 1",),
    "BlockMetadata": (
        "int64 byte_offset = 1",
        "int64 size_bytes = 2",
    ),
    "GetMetadataAllocatedRequest": (
        "string snapshot_id = 1",
        "int64 starting_offset = 2",
        "int32 max_results = 3",
        "map<string, string> secrets = 4",
    ),
    "GetMetadataAllocatedResponse": (
        "BlockMetadataType block_metadata_type = 1",
        "int64 volume_capacity_bytes = 2",
        "repeated BlockMetadata block_metadata = 3",
    ),
    "GetMetadataDeltaRequest": (
        "string base_snapshot_id = 1",
        "string target_snapshot_id = 2",
        "int64 starting_offset = 3",
        "int32 max_results = 4",
        "map<string, string> secrets = 5",
    ),
    "GetMetadataDeltaResponse": (
        "BlockMetadataType block_metadata_type = 1",
        "int64 volume_capacity_bytes = 2",
        "repeated BlockMetadata block_metadata = 3",
    ),
}

# Every enum: its values in declaration order.
ENUM_VALUES = {
    "BlockMetadataType": (
        "UNKNOWN = 0",
        "FIXED_LENGTH = 1",
        "VARIABLE_LENGTH = 2",
    ),
    "PluginCapability.Service.Type": (
        "UNKNOWN = 0",
        "CONTROLLER_SERVICE = 1",
        "VOLUME_ACCESSIBILITY_CONSTRAINTS = 2",
        "GROUP_CONTROLLER_SERVICE = 3",
        "SNAPSHOT_METADATA_SERVICE = 4",
    ),
    "PluginCapability.VolumeExpansion.Type": (
        "UNKNOWN = 0",
        "ONLINE = 1",
        "OFFLINE = 2",
    ),
    "VolumeCapability.AccessMode.Mode": (
        "UNKNOWN = 0",
        "SINGLE_NODE_WRITER = 1",
        "SINGLE_NODE_READER_ONLY = 2",
        "MULTI_NODE_READER_ONLY = 3",
        "MULTI_NODE_SINGLE_WRITER = 4",
        "MULTI_NODE_MULTI_WRITER = 5",
        "SINGLE_NODE_SINGLE_WRITER = 6",
        "SINGLE_NODE_MULTI_WRITER = 7",
    ),
    "ControllerServiceCapability.RPC.Type": (
        "UNKNOWN = 0",
        "CREATE_DELETE_VOLUME = 1",
        "PUBLISH_UNPUBLISH_VOLUME = 2",
        "LIST_VOLUMES = 3",
        "GET_CAPACITY = 4",
        "CREATE_DELETE_SNAPSHOT = 5",
        "LIST_SNAPSHOTS = 6",
        "CLONE_VOLUME = 7",
        "PUBLISH_READONLY = 8",
        "EXPAND_VOLUME = 9",
        "LIST_VOLUMES_PUBLISHED_NODES = 10",
        "VOLUME_CONDITION = 11",
        "GET_VOLUME = 12",
        "SINGLE_NODE_MULTI_WRITER = 13",
        "MODIFY_VOLUME = 14",
        "GET_SNAPSHOT = 15",
    ),
    "VolumeUsage.Unit": (
        "UNKNOWN = 0",
        "BYTES = 1",
        "INODES = 2",
    ),
    "NodeServiceCapability.RPC.Type": (
        "UNKNOWN = 0",
        "STAGE_UNSTAGE_VOLUME = 1",
        "GET_VOLUME_STATS = 2",
        "EXPAND_VOLUME = 3",
        "VOLUME_CONDITION = 4",
        "SINGLE_NODE_MULTI_WRITER = 5",
        "VOLUME_MOUNT_GROUP = 6",
    ),
    "GroupControllerServiceCapability.RPC.Type": (
        "UNKNOWN = 0",
        "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT = 1",
    ),
}

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

# The only streaming RPCs: both stream their responses.
SERVER_STREAMING = {"SnapshotMetadata.GetMetadataAllocated", "SnapshotMetadata.GetMetadataDelta"}

SECRETS = {
    "CreateVolumeRequest.secrets",
    "DeleteVolumeRequest.secrets",
    "ControllerPublishVolumeRequest.secrets",
    "ControllerUnpublishVolumeRequest.secrets",
    "ValidateVolumeCapabilitiesRequest.secrets",
    "ControllerModifyVolumeRequest.secrets",
    "CreateSnapshotRequest.secrets",
    "DeleteSnapshotRequest.secrets",
    "ListSnapshotsRequest.secrets",
    "GetSnapshotRequest.secrets",
    "ControllerExpandVolumeRequest.secrets",
    "NodeStageVolumeRequest.secrets",
    "NodePublishVolumeRequest.secrets",
    "NodeExpandVolumeRequest.secrets",
    "CreateVolumeGroupSnapshotRequest.secrets",
    "DeleteVolumeGroupSnapshotRequest.secrets",
    "GetVolumeGroupSnapshotRequest.secrets",
    "GetMetadataAllocatedRequest.secrets",
    "GetMetadataDeltaRequest.secrets",
}

ALPHA = {
    "service SnapshotMetadata",
    "method Controller.GetSnapshot",
    "method Controller.ControllerGetVolume",
    "message ControllerGetVolumeRequest",
    "message ControllerGetVolumeResponse",
    "message GetSnapshotRequest",
    "message GetSnapshotResponse",
    "message VolumeCondition",
    "field ListVolumesResponse.VolumeStatus.volume_condition",
    "field GetCapacityResponse.minimum_volume_size",
    "field NodeGetVolumeStatsResponse.volume_condition",
    "field NodeExpandVolumeRequest.secrets",
    "value PluginCapability.Service.Type.SNAPSHOT_METADATA_SERVICE",
    "value VolumeCapability.AccessMode.Mode.SINGLE_NODE_SINGLE_WRITER",
    "value VolumeCapability.AccessMode.Mode.SINGLE_NODE_MULTI_WRITER",
    "value ControllerServiceCapability.RPC.Type.VOLUME_CONDITION",
    "value ControllerServiceCapability.RPC.Type.GET_VOLUME",
    "value ControllerServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER",
    "value ControllerServiceCapability.RPC.Type.GET_SNAPSHOT",
    "value NodeServiceCapability.RPC.Type.VOLUME_CONDITION",
    "value NodeServiceCapability.RPC.Type.SINGLE_NODE_MULTI_WRITER",
}


def short(full_name: str) -> str:
    return full_name.removeprefix("csi.v1.")


def messages() -> list[Descriptor]:
    """Every message of the file, nested ones after their parent, map entries left out."""
    found: list[Descriptor] = []

    def visit(descriptor: Descriptor) -> None:
        found.append(descriptor)
        for nested in descriptor.nested_types:
            if not nested.GetOptions().map_entry:
                visit(nested)

    for descriptor in csi_pb2.DESCRIPTOR.message_types_by_name.values():
        visit(descriptor)
    return found


def enums() -> list[EnumDescriptor]:
    found = list(csi_pb2.DESCRIPTOR.enum_types_by_name.values())
    for descriptor in messages():
        found.extend(descriptor.enum_types)
    return found


def type_of(field: FieldDescriptor) -> str:
    target = field.message_type or field.enum_type
    if target is not None:
        return short(target.full_name)
    return SCALARS.get(field.type, f"<type {field.type}>")


def declaration(field: FieldDescriptor) -> str:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        key, value = (type_of(entry.fields_by_name[name]) for name in ("key", "value"))
        text = f"map<{key}, {value}> {field.name} = {field.number}"
    else:
        text = f"{'repeated ' if field.is_repeated else ''}{type_of(field)} {field.name} = {field.number}"
    oneof = field.containing_oneof
    return text if oneof is None else f"{text} (oneof {oneof.name})"


def has(descriptor: Any, extension: Any) -> bool:
    """Whether the descriptor's options set the custom option ``extension`` (csi_secret, alpha_*)."""
    return bool(descriptor.GetOptions().Extensions[extension])


def test_package_and_file() -> None:
    assert csi_pb2.DESCRIPTOR.package == "csi.v1"
    assert csi_pb2.DESCRIPTOR.name == "csi.proto"
    assert [dependency.name for dependency in csi_pb2.DESCRIPTOR.dependencies] == [
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/wrappers.proto",
    ]


def test_the_file_has_exactly_the_spec_messages_and_enums() -> None:
    assert [short(descriptor.full_name) for descriptor in messages()] == list(CONTRACT)
    assert [short(enum.full_name) for enum in enums()] == list(ENUM_VALUES)


@pytest.mark.parametrize("descriptor", messages(), ids=lambda descriptor: short(descriptor.full_name))
def test_message_fields_match_the_spec(descriptor: Descriptor) -> None:
    assert tuple(declaration(field) for field in descriptor.fields) == CONTRACT[short(descriptor.full_name)]


@pytest.mark.parametrize("enum", enums(), ids=lambda enum: short(enum.full_name))
def test_enum_values_match_the_spec(enum: EnumDescriptor) -> None:
    values = tuple(f"{value.name} = {value.number}" for value in enum.values)
    assert values == ENUM_VALUES[short(enum.full_name)]


def test_every_json_name_is_protoc_default() -> None:
    # protoc derives json_name from the field name; the spec sets none explicitly.
    for descriptor in messages():
        for field in descriptor.fields:
            head, *rest = field.name.split("_")
            assert field.json_name == head + "".join(part.capitalize() for part in rest), field.full_name


@pytest.mark.parametrize(("service", "methods"), SERVICES.items())
def test_services_and_methods_match_the_spec(service: str, methods: list[str]) -> None:
    descriptor = csi_pb2.DESCRIPTOR.services_by_name[service]
    assert [m.name for m in descriptor.methods] == methods
    for method in descriptor.methods:
        assert method.input_type.full_name == f"csi.v1.{method.name}Request"
        assert method.output_type.full_name == f"csi.v1.{method.name}Response"
        assert not method.client_streaming
        assert method.server_streaming == (f"{service}.{method.name}" in SERVER_STREAMING)


def test_the_services_are_exactly_the_spec_services() -> None:
    assert list(csi_pb2.DESCRIPTOR.services_by_name) == list(SERVICES)


def test_exactly_the_spec_secrets_fields_are_marked_csi_secret() -> None:
    marked = {
        f"{short(descriptor.full_name)}.{field.name}"
        for descriptor in messages()
        for field in descriptor.fields
        if has(field, csi_pb2.csi_secret)
    }
    assert marked == SECRETS


def test_exactly_the_spec_alpha_elements_are_marked_alpha() -> None:
    marked: set[str] = set()
    for service in csi_pb2.DESCRIPTOR.services_by_name.values():
        if has(service, csi_pb2.alpha_service):
            marked.add(f"service {service.name}")
        for method in service.methods:
            if has(method, csi_pb2.alpha_method):
                marked.add(f"method {service.name}.{method.name}")
    for descriptor in messages():
        if has(descriptor, csi_pb2.alpha_message):
            marked.add(f"message {short(descriptor.full_name)}")
        for field in descriptor.fields:
            if has(field, csi_pb2.alpha_field):
                marked.add(f"field {short(descriptor.full_name)}.{field.name}")
    for enum in enums():
        if has(enum, csi_pb2.alpha_enum):
            marked.add(f"enum {short(enum.full_name)}")
        for value in enum.values:
            if has(value, csi_pb2.alpha_enum_value):
                marked.add(f"value {short(enum.full_name)}.{value.name}")
    assert marked == ALPHA


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
