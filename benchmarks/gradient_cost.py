"""``python benchmarks/gradient_cost.py SPEC ...``. Per-gradient cost: the package's compiled log density (Numba, the form the default fit samples) against the
PyMC model's own logp+dlogp function (what pm.sample's NUTS calls), same spec and data."""
import sys, time, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
import numpy as np
import bench
from bayes_scaling.inference import fit as engine
from bayes_scaling.models import spec_model as sm

def per_call(f, x, n):
    f(x)
    t0 = time.perf_counter()
    for _ in range(n):
        f(x)
    return (time.perf_counter() - t0) / n

data = bench.builtin_spec_data()
for name in sys.argv[1:]:
    table, _ = data[name]
    spec = engine._as_spec(name)
    table, _ = engine._apply_exclusions(spec, table.reset_index(drop=True), "data", False)
    table = table.reset_index(drop=True)
    plan = sm.plan(spec, table)
    sampler = engine._sampler(plan, True, "auto")
    x0 = sampler.initial_point(0, jitter=False)
    sampler.set_affine(np.zeros(sampler.n_dim), np.eye(sampler.n_dim))
    ours = per_call(sampler.logp_and_gradient(), x0, 2000)
    d = sm.prepare(spec, table)
    priors = sm.default_priors(spec, d)
    model = sm.build_spec_model(spec, d, priors, sm.choose_parameterization(spec, d, priors), sm.noise_prior(spec, d))
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    ip = model.initial_point()
    xp = np.concatenate([np.ravel(ip[v.name]) for v in f._grad_vars])
    pymc = per_call(f, xp, 2000)
    print(f"{name}: {sampler.n_dim} dims, {len(table)} rows; per logp+gradient: ours {ours*1e6:.1f} us, PyMC {pymc*1e6:.1f} us ({pymc/ours:.2f}x)", flush=True)
