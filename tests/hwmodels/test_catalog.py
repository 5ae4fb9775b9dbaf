"""The hardware catalog: published H800 figures, the renamed-GPU trap, user files and their errors."""

from __future__ import annotations

import pytest

from hwmodels.registry import DATA_DIR, catalog, load_gpu, load_nic, load_node

REQUIRED_GPUS = {"h800", "h100", "h200", "h20", "a100", "b200", "gb200", "mi300x"}


@pytest.mark.golden
def test_h800_matches_the_published_figures(figures):
    # figures.toml [hardware.h800_sxm]: NVIDIA datasheet (same compute as H100 SXM), ISCA for NVLink and IB.
    pub, gpu = figures["hardware"]["h800_sxm"], load_gpu("h800")
    assert gpu.peak_bf16_flop_per_s == pytest.approx(pub["bf16_dense_tflops"] * 1e12, rel=1e-3)
    assert gpu.peak_fp8_flop_per_s == pytest.approx(pub["fp8_dense_tflops"] * 1e12, rel=1e-3)
    assert gpu.hbm_datasheet_bytes == pub["hbm_gb"] * 1e9
    assert gpu.hbm_bw_bytes_per_s == pub["hbm_tb_per_s"] * 1e12
    assert gpu.sm_count == pub["sms"]
    assert gpu.scaleup_bw_bytes_per_s_bidir == pub["nvlink_gb_per_s_bidirectional"] * 1e9
    assert gpu.scaleup_bw_bytes_per_s == pub["nvlink_gb_per_s_unidirectional"] * 1e9
    # ISCA MFU basis: 385 TFLOPS is 38.94% of the bf16 peak.
    assert 385e12 / gpu.peak_bf16_flop_per_s == pytest.approx(0.3894, abs=5e-4)
    # V3 report: $2 per H800 GPU-hour.
    assert gpu.price_usd_per_gpu_hour == figures["deepseek_v3"]["training"]["usd_per_gpu_hour"]


@pytest.mark.golden
def test_v3_node_has_one_400g_nic_per_gpu():
    # V3 report / ISCA: 8 GPUs per node, one CX7 400 Gb/s IB NIC each; ISCA uses 40 GB/s effective.
    node = load_node("h800-ib")
    assert node.gpus_per_node == node.nics_per_node == 8
    assert node.nic.bw_bytes_per_s == 50e9
    assert node.nic.effective_bw_bytes_per_s == 40e9
    assert node.scaleout_bw_bytes_per_s_per_gpu == 50e9


def test_h800_is_not_a_renamed_h100():
    h800, h100 = load_gpu("h800"), load_gpu("h100")
    assert h800.peak_bf16_flop_per_s == h100.peak_bf16_flop_per_s
    assert h800.scaleup_bw_bytes_per_s_bidir == 400e9 and h100.scaleup_bw_bytes_per_s_bidir == 900e9


def test_catalog_is_complete_and_sourced():
    assert set(catalog("gpus")) >= REQUIRED_GPUS
    for name in catalog("gpus"):
        assert load_gpu(name).source
    for name in catalog("nodes"):
        node = load_node(name)
        assert node.source and node.gpu.name in catalog("gpus")
    assert load_node("gb200-nvl72").scaleup_domain_gpus == 72


def test_fp8_and_fp4_support():
    assert load_gpu("b200").peak_flop_per_s("fp4") == 2 * load_gpu("b200").peak_flop_per_s("fp8")
    with pytest.raises(ValueError, match="a100 has no fp8 tensor cores"):
        load_gpu("a100").peak_flop_per_s("fp8")
    with pytest.raises(ValueError, match="unknown dtype 'int8'"):
        load_gpu("h800").peak_flop_per_s("int8")


def test_unknown_gpu_is_an_error_not_the_nearest_sku():
    with pytest.raises(ValueError, match=r"unknown GPU 'h800-pcie'; use a TOML file or one of: a100"):
        load_gpu("h800-pcie")


def _user_gpu(tmp_path, text: str):
    path = tmp_path / "my-gpu.toml"
    path.write_text(text)
    return str(path)


def _without_total(text: str) -> str:
    """A GPU file without its measured memory total: the datasheet's figure stands."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("hbm_total"))


def test_user_gpu_file(tmp_path):
    text = _without_total((DATA_DIR / "gpus" / "h800.toml").read_text()).replace("hbm_gb = 80", "hbm_gb = 96")
    gpu = load_gpu(_user_gpu(tmp_path, text))
    assert gpu.name == "my-gpu" and gpu.hbm_bytes == 96e9 and gpu.hbm_datasheet_bytes == 0
    assert gpu.memory_text() == "96.0 GB"
    node_text = (
        (DATA_DIR / "nodes" / "h800-ib.toml").read_text().replace('gpu = "h800"', f'gpu = "{tmp_path}/my-gpu.toml"')
    )
    node_path = tmp_path / "my-node.toml"
    node_path.write_text(node_text)
    assert load_node(str(node_path)).gpu.hbm_bytes == 96e9


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("sms = 132\n", ""), "missing key 'sms'"),
        (lambda t: t + "nvlink_gbps = 5\n", "unknown key 'nvlink_gbps'"),
        (lambda t: t.replace("hbm_gb = 80", 'hbm_gb = "80"'), "hbm_gb='80' must be a number"),
        (lambda t: t.replace("hbm_gb = 80", "hbm_gb = -80"), "hbm_total_mib=81,559 must be within 15% of hbm_gb=-80"),
        (lambda t: _without_total(t).replace("hbm_gb = 80", "hbm_gb = -80"), "hbm_bytes=-80000000000.0 must be"),
        (lambda t: t.replace("hbm_total_mib = 81559", "hbm_total_mib = 80"), "hbm_total_mib=80 must be within 15%"),
        (lambda t: t.replace("hbm_total_mib = 81559", "hbm_total_mib = 95e3"), "within 15% of hbm_gb=80 (MiB"),
        (lambda t: t.replace('hbm_total_source = "nvidia', 'hbm_total_source = " "\n#'), "needs hbm_total_source"),
        (lambda t: t.replace("hbm_total_mib = 81559", "hbm_total_mib = nan"), "hbm_total_mib=nan must be a finite"),
        (lambda t: t.replace('scaleup = "nvlink"', 'scaleup = "pcie"'), "scaleup='pcie'"),
        (lambda t: t + "[oops", "not valid TOML"),
    ],
)
def test_bad_user_files_name_the_key(tmp_path, edit, message):
    text = edit((DATA_DIR / "gpus" / "h800.toml").read_text())
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_gpu(_user_gpu(tmp_path, text))


def test_datasheet_gigabytes_are_binary_and_the_device_keeps_a_little():
    # Every catalog GPU's memory.total (nvidia-smi / rocm-smi, sourced in its file) is its datasheet's "GB" read as
    # GiB, less what the driver keeps (0.0-0.7%): an H100 "80 GB" shows 81,559 MiB. Reading "80 GB" as 80e9 bytes
    # had left 7% of every GPU's memory out of the KV caches and memory checks.
    for name in REQUIRED_GPUS:
        gpu = load_gpu(name)
        binary = gpu.hbm_datasheet_bytes / 1e9 * 2**30
        assert 0.99 * binary <= gpu.hbm_bytes <= binary, name
        assert gpu.hbm_source and "GiB; its datasheet's" in gpu.memory_text(), name
    assert load_gpu("h100").hbm_bytes == 81559 * 2**20 == load_gpu("h800").hbm_bytes
    assert load_gpu("h100").memory_text() == "85.5 GB (79.6 GiB; its datasheet's 80 GB)"


def test_b200_memory_is_fifteen_sixteenths_of_its_stacks():
    # The HGX B200 enables 15/16 of its eight 24 GB HBM3e stacks: 180 of 192 GB, and a 7,680-bit bus where the
    # datasheet's 8 TB/s counts 8,192 (pytorch/ao pull 4002 read the bus width and clock from the driver).
    b200 = load_gpu("b200")
    assert b200.hbm_datasheet_bytes / 192e9 == 15 / 16 == 7680 / 8192
    assert b200.hbm_bw_bytes_per_s == pytest.approx(7680 / 8 * 3996e6 * 2, rel=1e-3)
    assert load_gpu("gb200").hbm_bw_bytes_per_s == 8e12  # the NVL72 datasheet's 576 TB/s over 72 GPUs


def test_nic_effective_rate_cannot_exceed_line_rate(tmp_path):
    path = tmp_path / "nic.toml"
    path.write_text('source = "x"\nline_rate_gbit_per_s = 400\neffective_gb_per_s = 60\nlatency_us = 2\n')
    with pytest.raises(ValueError, match="exceeds the line rate"):
        load_nic(str(path))


def test_a_tray_must_divide_its_node():
    from dataclasses import replace

    from hwmodels.specs import job_share

    rack = load_node("gb200-nvl72")
    assert rack.tray_gpus == 4 and load_node("h800-ib").tray_gpus == 0
    with pytest.raises(ValueError, match="tray_gpus=5 must divide gpus_per_node=72"):
        replace(rack, tray_gpus=5)
    for gpus in range(4, 4 * 72 * 3, 4):  # every tray count: a share that divides the job, in trays, in one rack
        share = job_share(rack, gpus)
        assert gpus % share.gpus_per_node == 0 and share.gpus_per_node % 4 == 0 and share.gpus_per_node <= 72
        assert (share.rack is None) == (gpus % 72 == 0)
        assert job_share(share, 1152) == rack  # a share is cut from the rack, never from another share
