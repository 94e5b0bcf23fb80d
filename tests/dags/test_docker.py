"""The docker deployment: compose file and Dockerfile checked without a docker daemon."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from airflow_helpers import AIRFLOW, REPO_ROOT

DOCKER = REPO_ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yaml"
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
    "airflow-worker-gpu": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_of(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in service["environment"].items()}


def test_all_services_are_there(compose) -> None:
    assert set(compose["services"]) >= {"postgres", "redis", "airflow-init", *AIRFLOW_SERVICES}


@pytest.mark.parametrize("name", sorted(AIRFLOW_SERVICES))
def test_airflow_services_share_the_celery_setup_and_mount_the_dags(compose, name: str) -> None:
    service = compose["services"][name]
    assert str(service["command"]).startswith(AIRFLOW_SERVICES[name])
    env = env_of(service)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW_CONN_FINSENT_POSTGRES"].endswith("@postgres:5432/finsent")
    assert "../dags:/opt/airflow/dags:ro" in service["volumes"]
    assert "healthcheck" in service
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_gpu_worker_is_optional_takes_the_gpu_queue_and_reserves_a_gpu(compose) -> None:
    gpu = compose["services"]["airflow-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert "--queues gpu" in gpu["command"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX"]
    cpu = compose["services"]["airflow-worker"]
    assert "--queues default" in cpu["command"] and "profiles" not in cpu


def test_init_migrates_both_databases_and_creates_the_pool(compose) -> None:
    init = compose["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert "airflow db migrate" in script
    assert "finsent db upgrade" in script
    pool = env_of(init)["FINSENT_SCORE_POOL"]
    assert pool == "${FINSENT_SCORE_POOL:-finsent_gpu}"
    assert "airflow pools set finsent_gpu 1" in script
    # Fine-tuning has its own pool: a training run never holds the scoring slot.
    assert env_of(init)["FINSENT_TRAIN_POOL"] == "${FINSENT_TRAIN_POOL:-finsent_train}"
    assert "airflow pools set finsent_train 1" in script


def test_init_keeps_the_pool_sizes_an_operator_changed(compose) -> None:
    # airflow-init runs again on every `docker compose up` (the services wait for it): a plain
    # `pools set` would put a pool resized in the UI back to 1 slot each time.
    script = "\n".join(compose["services"]["airflow-init"]["command"])
    sets = re.findall(r"^.*airflow pools set (\S+) .*$", script, re.M)
    assert sets
    for line in (line for line in script.splitlines() if "airflow pools set" in line):
        pool = re.search(r"airflow pools set (\S+)", line).group(1)
        assert re.match(rf"\s*airflow pools get {pool}\b.*\|\|\s*airflow pools set {pool}\b", line), line


def test_gpu_worker_runs_a_training_task_and_scoring_at_once(compose) -> None:
    # Scoring (pool finsent_gpu, 1 slot) and fine-tuning (pool finsent_train, 1 slot) both
    # go to the gpu queue when FINSENT_SCORE_QUEUE=gpu: one slot would queue scoring behind
    # a training run of hours.
    command = compose["services"]["airflow-worker-gpu"]["command"]
    concurrency = int(re.search(r"--concurrency (\d+)", command).group(1))
    assert concurrency >= 2


def test_references_resolve(compose) -> None:
    services = set(compose["services"])
    volumes = set(compose["volumes"])
    for name, service in compose["services"].items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/", "$")):
                if not source.startswith("$"):
                    assert (DOCKER / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"


def test_required_variables_are_in_the_env_example() -> None:
    text = COMPOSE.read_text()
    example = (DOCKER / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    required = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?:\}|:\?)", text))
    assert required <= defined, f"set these in .env.example: {sorted(required - defined)}"
    # Everything the example defines is used (no stale knobs).
    assert defined <= used | {"AIRFLOW_UID"}, sorted(defined - used)


def _dag_file_variables() -> dict[str, str]:
    """FINSENT_* variables the DAG files read at parse time, with the DAG file's default
    (None when an empty value is treated as unset)."""
    found: dict[str, str] = {}
    for path in (REPO_ROOT / "dags").glob("*.py"):
        for name in re.findall(r"os\.environ\.get\(\"(FINSENT_[A-Z_]+)\"", path.read_text()):
            found[name] = path.name
    return found


def test_every_dag_level_variable_reaches_the_airflow_containers(compose) -> None:
    # The DAG files read these when the dag-processor parses them: one the compose file does
    # not pass is silently ignored, whatever .env says.
    env = compose["x-airflow-common"]["environment"]
    read = _dag_file_variables()
    assert {"FINSENT_MAINTENANCE_SCHEDULE", "FINSENT_TRAIN_QUEUE", "FINSENT_FINETUNE_RECIPE"} <= set(read)
    missing = sorted(name for name in read if name not in env)
    assert missing == [], f"docker-compose.yaml does not pass {missing} ({[read[n] for n in missing]})"
    for name in read:
        assert str(env[name]).startswith(f"${{{name}"), f"{name} is not taken from .env"


def test_an_empty_schedule_or_recipe_in_env_reaches_the_dag_as_empty(compose) -> None:
    # Empty FINSENT_FINETUNE_SCHEDULE means trigger only and an empty FINSENT_FINETUNE_RECIPE
    # TrainConfig's defaults (deployment.md): ${VAR:-default} would turn both into the default.
    env = compose["x-airflow-common"]["environment"]
    for name in ("FINSENT_FINETUNE_SCHEDULE", "FINSENT_FINETUNE_RECIPE"):
        assert re.fullmatch(rf"\$\{{{name}-[^}}]+\}}", str(env[name])), env[name]


def test_dockerfile_builds_from_python_slim_with_cpu_torch_and_copies_what_exists() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim", text, re.M)
    assert "ARG PYTHON_VERSION=3.11" in text
    assert "download.pytorch.org/whl/cpu" in text
    for source in re.findall(r"^COPY (\S+(?: \S+)*) \S+$", text, re.M):
        for part in source.split():
            assert (REPO_ROOT / part).exists(), f"Dockerfile copies missing {part}"


@pytest.mark.slow
def test_the_commands_used_exist_in_this_airflow() -> None:
    out = subprocess.run([AIRFLOW, "--help"], capture_output=True, text=True, timeout=120).stdout
    for command in ("api-server", "scheduler", "dag-processor", "triggerer", "celery", "pools", "db"):
        assert re.search(rf"^\s+{command}\s", out, re.M), f"airflow has no '{command}' command"


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin), else the standalone ``docker-compose`` (Debian's 1.29)."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(
    compose_command() is None, reason="neither docker compose nor docker-compose is installed"
)
def test_docker_compose_config_accepts_the_file_and_rejects_a_broken_one(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text((DOCKER / ".env.example").read_text())

    def config(path: Path) -> subprocess.CompletedProcess[str]:
        args = ["-f", str(path), "--project-directory", str(DOCKER), "--env-file", str(env)]
        return subprocess.run(
            [*compose_command(), *args, "--profile", "gpu", "config", "-q"],  # type: ignore[misc]
            capture_output=True,
            text=True,
            timeout=60,
        )

    proc = config(COMPOSE)
    assert proc.returncode == 0, proc.stderr
    # the check is real: a misspelt dependency condition is refused
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("service_completed_successfully", "service_completed"))
    assert config(broken).returncode != 0


def test_build_context_sends_only_what_the_image_needs() -> None:
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore
    copied = re.findall(r"^COPY (\S+(?: \S+)*) \S+$", (DOCKER / "Dockerfile").read_text(), re.M)
    for part in (p for source in copied for p in source.split()):
        assert f"!{part.rstrip('/')}" in ignore or f"!{part.rstrip('/')}/" in ignore, part
