import torch, math, vaecourse as vc, warnings
exec(open('/work/main/.dev/fuzz2.py').read().split("mu = torch.zeros")[0].split("warnings.simplefilter")[1].split("\n",1)[1])
torch.manual_seed(0)
x = torch.rand(20, 6)
cases = {
 "train double": lambda: vc.train(vc.VAE(6,2,hidden=(8,)).double(), x.double(), epochs=1, progress=False)['loss'],
 "train double model float data": lambda: vc.train(vc.VAE(6,2,hidden=(8,)).double(), x, epochs=1, progress=False)['loss'],
 "train half model": lambda: vc.train(vc.VAE(6,2,hidden=(8,)).half(), x.half(), epochs=1, progress=False)['loss'],
 "train bf16 model": lambda: vc.train(vc.VAE(6,2,hidden=(8,)).bfloat16(), x.bfloat16(), epochs=1, progress=False)['loss'],
 "train gaussian dynbin": lambda: vc.train(vc.VAE(6,2,hidden=(8,),likelihood='gaussian'), x, epochs=1, dynamic_binarization=True, progress=False)['loss'],
 "train iwae free bits": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, objective='iwae', k=3, free_bits=0.5, progress=False)['loss'],
 "train iwae beta": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, objective='iwae', k=3, beta=0.5, progress=False)['loss'],
 "train schedule and beta": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, beta=0.5, kl_schedule=vc.LinearSchedule(5), progress=False)['beta'],
 "train schedule returns nan": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, kl_schedule=lambda s: float('nan'), progress=False)['loss'],
 "train schedule returns str": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, kl_schedule=lambda s: 'a', progress=False)['loss'],
 "train schedule returns -1": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, kl_schedule=lambda s: -1, progress=False)['loss'],
 "train cond no y": lambda: vc.train(vc.VAE(6,2,hidden=(8,),cond_dim=3), x, epochs=1, progress=False)['loss'],
 "train cond y ints": lambda: vc.train(vc.VAE(6,2,hidden=(8,),cond_dim=3), (x, torch.zeros(20, dtype=torch.long)), epochs=1, progress=False)['loss'],
 "train cond y wrong N": lambda: vc.train(vc.VAE(6,2,hidden=(8,),cond_dim=3), (x, torch.zeros(19,3)), epochs=1, progress=False)['loss'],
 "train lr 0": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, lr=0, progress=False)['loss'],
 "train huge lr": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=3, lr=1e6, progress=False)['loss'],
 "train lineargauss": lambda: vc.train(vc.LinearGaussianVAE(6,2), x, epochs=1, progress=False)['loss'],
 "train lineargauss iwae": lambda: vc.train(vc.LinearGaussianVAE(6,2), x, epochs=1, objective='iwae', k=4, progress=False)['loss'],
 "train epochs float": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=2.0, progress=False)['loss'],
 "train device str bogus": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, device='tpu', progress=False)['loss'],
 "train sgd": lambda: (lambda m: vc.train(m, x, epochs=1, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), progress=False)['loss'])(vc.VAE(6,2,hidden=(8,))),
 "train opt other params": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x, epochs=1, optimizer=torch.optim.SGD(vc.VAE(6,2,hidden=(8,)).parameters(), lr=0.1), progress=False)['loss'],
 "train x grey requires_grad": lambda: vc.train(vc.VAE(6,2,hidden=(8,)), x.clone().requires_grad_(), epochs=1, progress=False)['loss'],
 "ll double model": lambda: vc.VAE(6,2,hidden=(8,)).double().log_likelihood(x.double(), k=10),
 "iwae_bound method k=1 vs elbo": lambda: (lambda m: (torch.manual_seed(1), m.iwae_bound(x, 1))[1] - (torch.manual_seed(1), m.elbo(x))[1])(vc.VAE(6,2,hidden=(8,))),
}
for k, f in cases.items():
    run(k, f)
