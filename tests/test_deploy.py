"""Deployment files, checked with the linters that run here (no Docker engine or cluster runs on these machines, so
the image is not built and the manifests are not applied: deploy/README.md says what was not exercised)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_yaml_is_clean():
    p = run(str(BIN / "yamllint"), "-s", "-d", "{extends: relaxed, rules: {line-length: {max: 130}}}", "deploy/")
    assert p.returncode == 0, p.stdout + p.stderr


def test_kubernetes_manifests_validate_against_the_api_schemas():
    manifests = sorted(str(p) for p in (ROOT / "deploy" / "k8s").glob("*.yaml"))
    p = run(str(BIN / "kubernetes-validate"), "--strict", *manifests)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("passed") + p.stderr.count("passed") == 7  # 3 Deployments/StatefulSets, 3 Services, 1 HPA


def test_dockerfile_passes_hadolint():
    p = run(str(BIN / "hadolint"), "--failure-threshold", "info", "deploy/Dockerfile")
    assert p.returncode == 0, p.stdout + p.stderr
