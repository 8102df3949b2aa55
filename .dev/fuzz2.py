import math, traceback, warnings
import numpy as np, torch
import vaecourse as vc
warnings.simplefilter("ignore")
T = torch.tensor
def run(name, f):
    try:
        r = f()
        if isinstance(r, torch.Tensor):
            desc = f"shape={tuple(r.shape)} dtype={r.dtype} finite={bool(torch.isfinite(r).all()) if r.numel() else 'empty'} val={r.flatten()[:4].tolist()}"
        else:
            desc = repr(r)[:120]
        print(f"OK    {name}: {desc}")
    except (ValueError, TypeError) as e:
        print(f"CLEAR {name}: {type(e).__name__}: {str(e)[:150]}")
    except Exception as e:
        print(f"BAD   {name}: {type(e).__name__}: {str(e)[:200]}")
mu = torch.zeros(3, 2); lv = torch.zeros(3, 2)
cases = {
 "kl empty batch": lambda: vc.gaussian_kl(torch.zeros(0, 2), torch.zeros(0, 2)),
 "kl zero-dim latent": lambda: vc.gaussian_kl(torch.zeros(3, 0), torch.zeros(3, 0)),
 "kl 0-d": lambda: vc.gaussian_kl(T(1.0), T(0.0)),
 "kl 1-d": lambda: vc.gaussian_kl(T([2., 0.]), T([math.log(.25), math.log(4.)])),
 "kl float16": lambda: vc.gaussian_kl(mu.half(), lv.half()),
 "kl bfloat16": lambda: vc.gaussian_kl(mu.bfloat16(), lv.bfloat16()),
 "kl complex": lambda: vc.gaussian_kl(mu.to(torch.complex64), lv.to(torch.complex64)),
 "kl int": lambda: vc.gaussian_kl(torch.zeros(3,2,dtype=torch.long), torch.zeros(3,2,dtype=torch.long)),
 "kl numpy": lambda: vc.gaussian_kl(np.zeros((3,2)), np.zeros((3,2))),
 "kl list": lambda: vc.gaussian_kl([[2.,0.]], [[0.,0.]]),
 "kl mixed dtype": lambda: vc.gaussian_kl(mu.double(), lv),
 "kl broadcast": lambda: vc.gaussian_kl(torch.zeros(3,2), torch.zeros(1,2)),
 "kl mismatch": lambda: vc.gaussian_kl(torch.zeros(3,2), torch.zeros(3,3)),
 "kl inf mu": lambda: vc.gaussian_kl(T([[float('inf'),0.]]), T([[0.,0.]])),
 "kl nan": lambda: vc.gaussian_kl(T([[float('nan'),0.]]), T([[0.,0.]])),
 "kl huge logvar": lambda: vc.gaussian_kl(T([[0.,0.]]), T([[100.,0.]])),
 "kl noncontig": lambda: vc.gaussian_kl(torch.zeros(2,3).t(), torch.zeros(2,3).t()),
 "kl meta": lambda: vc.gaussian_kl(torch.zeros(3,2,device='meta'), torch.zeros(3,2,device='meta')),
 "kl requires grad": lambda: vc.gaussian_kl(torch.zeros(3,2,requires_grad=True), torch.zeros(3,2)),
 "kl 3d": lambda: vc.gaussian_kl(torch.zeros(4,3,2), torch.zeros(4,3,2)),
 "kl per dim 1d": lambda: vc.gaussian_kl_per_dim(T([2.,0.]), T([0.,0.])),
 "free bits neg lambda": lambda: vc.free_bits_kl(mu, lv, -1.0),
 "free bits nan lambda": lambda: vc.free_bits_kl(mu, lv, float('nan')),
 "free bits tensor lambda": lambda: vc.free_bits_kl(mu, lv, T(0.5)),
 "free bits str": lambda: vc.free_bits_kl(mu, lv, "0.5"),
 "reparam empty": lambda: vc.reparameterize(torch.zeros(0,2), torch.zeros(0,2)),
 "reparam k=0": lambda: vc.reparameterize(mu, lv, 0) ,
 "reparam gen": lambda: vc.reparameterize(mu, lv, generator=torch.Generator().manual_seed(0)),
 "reparam int": lambda: vc.reparameterize(torch.zeros(3,2,dtype=torch.long), torch.zeros(3,2,dtype=torch.long)),
 "reparam half": lambda: vc.reparameterize(mu.half(), lv.half()),
 "log_normal scalars": lambda: vc.log_normal(0., 0., 0.),
 "log_normal int x": lambda: vc.log_normal(torch.zeros(3,2,dtype=torch.long), mu, lv),
 "log_normal shape mismatch": lambda: vc.log_normal(torch.zeros(3,3), mu, lv),
 "log_std_normal empty": lambda: vc.log_standard_normal(torch.zeros(0,2)),
 "log_std_normal 1d": lambda: vc.log_standard_normal(torch.zeros(2)),
 "bern x>1": lambda: vc.bernoulli_log_likelihood(torch.full((2,3), 2.), torch.zeros(2,3)),
 "bern x<0": lambda: vc.bernoulli_log_likelihood(torch.full((2,3), -1.), torch.zeros(2,3)),
 "bern logits inf": lambda: vc.bernoulli_log_likelihood(torch.ones(2,3), torch.full((2,3), float('inf'))),
 "bern logits -inf x=1": lambda: vc.bernoulli_log_likelihood(torch.ones(2,3), torch.full((2,3), -float('inf'))),
 "bern bool x": lambda: vc.bernoulli_log_likelihood(torch.ones(2,3,dtype=torch.bool), torch.zeros(2,3)),
 "bern uint8 x": lambda: vc.bernoulli_log_likelihood(torch.ones(2,3,dtype=torch.uint8), torch.zeros(2,3)),
 "bern broadcast K": lambda: vc.bernoulli_log_likelihood(torch.ones(2,3), torch.zeros(5,2,3)),
 "gauss ll neg logvar ok": lambda: vc.gaussian_log_likelihood(torch.zeros(2,3), torch.zeros(2,3), torch.full((2,3), -3.)),
 "iwae k=1 equals elbo": lambda: vc.iwae_bound(torch.zeros(1,4), torch.zeros(1,4), torch.zeros(1,4)),
 "iwae empty K": lambda: vc.iwae_bound(torch.zeros(0,4), torch.zeros(0,4), torch.zeros(0,4)),
 "iwae 1d": lambda: vc.iwae_bound(torch.zeros(4), torch.zeros(4), torch.zeros(4)),
 "iwae -inf one": lambda: vc.iwae_bound(T([[-float('inf')],[0.]]), torch.zeros(2,1), torch.zeros(2,1)),
 "iwae all -inf": lambda: vc.iwae_bound(torch.full((2,1),-float('inf')), torch.zeros(2,1), torch.zeros(2,1)),
 "iwae nan": lambda: vc.iwae_bound(T([[float('nan')],[0.]]), torch.zeros(2,1), torch.zeros(2,1)),
 "iwae mismatch": lambda: vc.iwae_bound(torch.zeros(3,4), torch.zeros(2,4), torch.zeros(3,4)),
 "schedule float step": lambda: vc.LinearSchedule(10)(2.5),
 "schedule zero warmup": lambda: vc.LinearSchedule(0)(0),
 "schedule neg warmup": lambda: vc.LinearSchedule(-5),
 "schedule nan": lambda: vc.LinearSchedule(10)(float('nan')),
 "schedule bool": lambda: vc.LinearSchedule(10)(True),
 "sigmoid sched": lambda: vc.SigmoidSchedule(10)(5),
 "sigmoid sched 0": lambda: vc.SigmoidSchedule(0),
 "cyclical": lambda: vc.CyclicalSchedule(10)(25),
 "cyclical 0": lambda: vc.CyclicalSchedule(0),
 "latent_activity 1d": lambda: vc.latent_activity(torch.zeros(5)),
 "latent_activity B=1": lambda: vc.latent_activity(torch.zeros(1,3)),
 "active_units neg thr": lambda: vc.active_units(torch.ones(3), -1.),
 "binarize int": lambda: vc.binarize(torch.ones(2,2,dtype=torch.long)),
 "binarize x>1": lambda: vc.binarize(torch.full((2,2),2.)),
 "set_seed float": lambda: vc.set_seed(1.5),
 "set_seed str": lambda: vc.set_seed("1"),
 "get_device bogus": lambda: vc.get_device("tpu"),
 "get_device cuda": lambda: vc.get_device("cuda"),
 "VAE 0 latent": lambda: vc.VAE(784, 0),
 "VAE neg hidden": lambda: vc.VAE(784, 2, hidden=-3),
 "VAE bad decoder": lambda: vc.VAE(784, 2, decoder="poisson"),
 "VAE float dims": lambda: vc.VAE(784.0, 2),
}
for k, f in cases.items():
    run(k, f)
