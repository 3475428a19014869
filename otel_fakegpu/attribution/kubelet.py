"""The kubelet's pod-resources v1 API as a source: one ``List`` per cycle over its Unix socket.

Unlike dcgm-exporter, which dials the kubelet and lists pods on every scrape, the channel is kept between
cycles and re-dialled only after a failure (so a restarted kubelet is found on the next cycle, not after
gRPC's reconnect back-off). The response is decoded only when its bytes differ from the previous cycle's.
The call is a blocking one with the timeout as its deadline, made on the stage's attribution thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from otel_fakegpu.attribution.devices import parse_device
from otel_fakegpu.attribution.dra import DraDevice, ResourceSlices, dra_claims
from otel_fakegpu.attribution.limits import check_name
from otel_fakegpu.attribution.model import Claim, WorkloadIdentity
from otel_fakegpu.attribution.source import Claims, Source, SourceError

if TYPE_CHECKING:  # imported where used: gRPC and protobuf cost every start a tenth of a second, and only -k needs them
    import grpc

    from otel_fakegpu.attribution.podresources_v1 import api_pb2

LIST_METHOD = "/v1.PodResourcesLister/List"
GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
_REQUEST = b""  # ListPodResourcesRequest has no fields: its encoding is empty
_CHANNEL_OPTIONS = (("grpc.max_receive_message_length", 16 * 1024 * 1024), ("grpc.enable_retries", 0))


def claims_from_response(
    response: api_pb2.ListPodResourcesResponse,
    id_type: str,
    resource_names: Sequence[str],
    dra_devices: Mapping[tuple[str, str], DraDevice] | None = None,
) -> Claims:
    """dcgm-exporter's filter and id rules: ``nvidia.com/gpu``, ``nvidia.com/mig-*`` and the configured names; with
    ``dra_devices`` (DRA on) also the containers' DRA claims of GPUs those ResourceSlice devices name."""
    claims: list[Claim] = []
    for pod in response.pod_resources:
        for container in pod.containers:
            if dra_devices is not None and container.dynamic_resources:
                claims += dra_claims(pod.name, pod.namespace, container.name, container.dynamic_resources, dra_devices)
            for devices in container.devices:
                name = devices.resource_name
                if name != GPU_RESOURCE and name not in resource_names and not name.startswith(MIG_RESOURCE_PREFIX):
                    continue
                claims.extend(_claims(pod.name, pod.namespace, container.name, devices.device_ids, id_type))
    return tuple(claims)


def _claims(pod: str, namespace: str, container: str, device_ids: Iterable[str], id_type: str) -> Iterable[Claim]:
    device_ids = list(device_ids)
    try:
        for name, what in ((pod, "pod"), (namespace, "namespace"), (container, "container")):
            check_name(name, what)
        for device_id in device_ids:
            check_name(device_id, "device id")
    except ValueError as exc:
        raise SourceError(f"List: {exc}") from None
    for device_id in device_ids:
        ref, vgpu = parse_device(device_id, id_type)
        if ref is not None:
            yield Claim(ref, WorkloadIdentity(pod, namespace, container, vgpu=vgpu))


class KubeletSource(Source):
    """``-k``: the kubelet's pod-resources socket (``--pod-resources-kubelet-socket``)."""

    name = "kubelet"

    def __init__(
        self,
        socket_path: str,
        id_type: str = "uid",
        resource_names: Sequence[str] = (),
        resource_slices: ResourceSlices | None = None,
    ) -> None:
        """``resource_slices``: DRA on (``--kubernetes-enable-dra``), the devices its claims name."""
        self.socket_path = socket_path
        self.resource_slices = resource_slices
        self._dra_devices: Mapping[tuple[str, str], DraDevice] | None = None
        self.id_type = id_type
        self.resource_names = tuple(resource_names)
        self._channel: grpc.Channel | None = None
        self._list: grpc.UnaryUnaryMultiCallable | None = None
        self._last_body: bytes | None = None
        self._last_claims: Claims = ()

    def fetch(self, timeout_s: float) -> Claims:
        """One List call, its deadline the timeout."""
        import grpc  # noqa: PLC0415 - see the imports

        if not os.path.exists(self.socket_path):
            self.redial()
            raise SourceError(f"{self.socket_path}: no such socket (is the kubelet running?)")
        if self._list is None:
            self._channel = grpc.insecure_channel(f"unix:{os.path.abspath(self.socket_path)}", _CHANNEL_OPTIONS)
            # No response deserializer: the raw bytes let an unchanged answer skip decoding.
            self._list = self._channel.unary_unary(LIST_METHOD, request_serializer=None, response_deserializer=None)
        try:
            body = self._list(_REQUEST, timeout=timeout_s)
        except grpc.RpcError as exc:
            self.redial()
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise SourceError(f"List on {self.socket_path}: {code.name if code else 'error'}: {details}") from None
        return self.decode(body)

    def decode(self, body: bytes) -> Claims:
        if self.resource_slices is not None:
            devices = self.resource_slices.devices()
            if devices is not self._dra_devices:  # the slices changed: the same answer means other devices
                self._dra_devices, self._last_body = devices, None
        if body != self._last_body:
            from otel_fakegpu.attribution.podresources_v1 import api_pb2  # noqa: PLC0415 - see the imports

            try:
                response = api_pb2.ListPodResourcesResponse.FromString(body)
            except Exception as exc:  # a kubelet (or impostor) sending garbage is a failed fetch
                raise SourceError(f"List on {self.socket_path}: undecodable answer: {exc}") from None
            self._last_claims = claims_from_response(response, self.id_type, self.resource_names, self._dra_devices)
            self._last_body = body
        return self._last_claims

    def redial(self) -> None:
        """Drop the channel so the next cycle dials afresh."""
        if self._channel is not None:
            self._channel.close()
        self._channel, self._list = None, None

    def close(self) -> None:
        self.redial()
