"""The Kubernetes manifests and the configuration reference are generated from the code; their
checks (run by `make test`) catch what they must."""

from __future__ import annotations

from sirene.devstack import confdoc, k8s
from sirene.devstack.stack import SERVICES


def test_generated_manifests_validate() -> None:
    assert k8s.validate(k8s.render()) == []


def test_schema_check_reports_a_broken_manifest() -> None:
    files = k8s.render()
    docs = k8s.documents(files["fanout.yaml"])
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = (
        "/healthz"
    )
    files["fanout.yaml"] = k8s._dump(*docs)
    problems = k8s.validate(files)
    assert len(problems) == 1
    assert problems[0].startswith("fanout.yaml: Deployment fanout:")


def test_every_service_is_deployed_with_probes_and_limits_and_workers_scale_on_lag() -> None:
    files = k8s.render()
    for service in SERVICES:
        if service.name == "provider-sim":
            assert f"{service.name}.yaml" not in files  # a development tool, never deployed
            continue
        docs = {d["kind"]: d for d in k8s.documents(files[f"{service.name}.yaml"])}
        container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["limits"]["memory"]
        scales = "HorizontalPodAutoscaler" in docs
        assert scales == (service.name == "fanout" or service.name.startswith("channel-"))
        if scales:
            metric = docs["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["external"]["metric"]
            assert metric["selector"]["matchLabels"] == {"service": service.name}


def test_configuration_reference_names_every_setting() -> None:
    text = confdoc.render()
    for _, settings in confdoc.settings_classes():
        for name, field in settings.model_fields.items():
            if name != "service_name":
                assert f"`{confdoc._env_name(settings, name, field)}`" in text
