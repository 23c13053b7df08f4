"""The smoke sweep on a GPU: ``python benchmarks/gpu_sweep.py OUT`` on a machine whose JAX sees a GPU.

Runs the smoke sweep on JAX's GPU in the process (twice: the second with warm caches), through a Dask worker
(a local cluster of one), and on the same machine's CPU (``BAYES_SCALING_JAX_DEVICE=cpu:0``); writes each
runs table and ``OUT/result.json``: the devices used, the times, and the largest loss differences between
the runs (0 between the GPU runs: the sweep asks XLA for deterministic GPU kernels).
"""
import json
import os
import shutil
import sys
import time
import traceback


def main():
    out = sys.argv[1]
    work = "/tmp/gpu_sweeps"
    res = {}
    from bayes_scaling.experiments.sweep import _jax_env

    _jax_env()  # as the command line does before JAX starts
    res["XLA_FLAGS"] = os.environ.get("XLA_FLAGS")
    import jax  # noqa: E402

    res["jax"] = jax.__version__
    res["devices"] = [str(d) for d in jax.devices()]
    print("JAX", jax.__version__, jax.devices(), flush=True)
    from bayes_scaling.experiments import load_config, run_sweep  # noqa: E402
    from bayes_scaling.experiments.corpora import corpus_files  # noqa: E402

    cfg = load_config()
    try:
        corpus_files("c")
    except Exception as exc:  # noqa: BLE001
        res["no_c_corpus"] = str(exc)
        cfg["pretrain"]["mixes"] = ["text"]


    def sweep(name, **kw):
        t = time.time()
        try:
            r = run_sweep(cfg, f"{work}/{name}", log=lambda m: print(f"[{name}] {m}", flush=True), **kw)
            res[name] = {"s": round(time.time() - t, 1), **r}
            shutil.copy(f"{work}/{name}/runs.csv", f"{out}/{name}_runs.csv")
        except Exception:  # noqa: BLE001
            res[name] = {"error": traceback.format_exc()[-2000:]}


    sweep("gpu_serial", workers=1)
    sweep("gpu_serial_again", workers=1)  # compiled code from the disk cache
    try:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cl, \
                Client(cl) as c:
            sweep("gpu_dask_worker", client=c)
    except Exception:  # noqa: BLE001
        res["gpu_dask_worker"] = {"error": traceback.format_exc()[-2000:]}
    os.environ["BAYES_SCALING_JAX_DEVICE"] = "cpu:0"
    sweep("cpu_serial", workers=1)
    try:
        import pandas as pd

        tabs = {k: pd.read_csv(f"{out}/{k}_runs.csv").set_index("run_id").sort_index()
                for k in ("gpu_serial", "gpu_serial_again", "gpu_dask_worker", "cpu_serial") if os.path.exists(f"{out}/{k}_runs.csv")}
        res["devices_used"] = {k: sorted(set(t["device"])) for k, t in tabs.items()}
        if "gpu_serial" in tabs and "gpu_dask_worker" in tabs:
            res["gpu_serial_vs_dask_max_abs_loss_diff"] = float((tabs["gpu_serial"]["loss"] - tabs["gpu_dask_worker"]["loss"]).abs().max())
        if "gpu_serial" in tabs and "gpu_serial_again" in tabs:
            res["gpu_serial_vs_again_max_abs_loss_diff"] = float((tabs["gpu_serial"]["loss"] - tabs["gpu_serial_again"]["loss"]).abs().max())
        if "gpu_serial" in tabs and "cpu_serial" in tabs:
            d = (tabs["gpu_serial"]["loss"] - tabs["cpu_serial"]["loss"]).abs()
            res["gpu_vs_cpu_max_abs_loss_diff"] = float(d.max())
            res["gpu_vs_cpu_median_abs_loss_diff"] = float(d.median())
            res["columns_same"] = list(tabs["gpu_serial"].columns) == list(tabs["cpu_serial"].columns)
    except Exception:  # noqa: BLE001
        res["compare_error"] = traceback.format_exc()[-1500:]
    print(json.dumps(res, indent=1), flush=True)
    json.dump(res, open(f"{out}/result.json", "w"), indent=1)


if __name__ == "__main__":
    main()
