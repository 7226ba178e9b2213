"""The residual-network lab: the classic experiments, one module each, each with a Config dataclass (listed in CONFIGS; its field types make the command's flags) and
``run(config, directory, progress)`` that writes CSV/JSON numbers and PNG figures to ``directory``.

gradflow     per-layer gradient norms: vanishing/exploding in plain nets, healthy with BN or shortcuts
variance     forward variance per block: exponential growth without BN, linear with BN
degradation  deeper plain nets train worse; deeper residual nets do not (He et al. 2015)
shattered    input gradients decorrelate with depth in plain nets, not in residual nets (Balduzzi et al. 2017)
lesion       deleting blocks at test time; paths and their gradients (Veit et al. 2016)
explain      one residual block, forward and backward, node by node; the gradient split at the join
landscape    loss surfaces around trained weights, plain vs residual (Li et al. 2018)
sharpness    the Hessian's largest eigenvalue and trace, plain vs residual, at init and trained
joins        the gradient at every join: the shortcut's part and the branch's, across depth
"""
from . import degradation, explain, gradflow, joins, landscape, lesion, sharpness, shattered, variance

EXPERIMENTS = {"gradflow": gradflow, "variance": variance, "degradation": degradation, "shattered": shattered,
               "lesion": lesion, "explain": explain, "landscape": landscape,
               "sharpness": sharpness, "joins": joins}
CONFIGS = {"gradflow": gradflow.GradflowConfig, "variance": variance.VarianceConfig,
           "degradation": degradation.DegradationConfig, "shattered": shattered.ShatteredConfig,
           "lesion": lesion.LesionConfig, "explain": explain.ExplainConfig,
           "landscape": landscape.LandscapeConfig,
           "sharpness": sharpness.SharpnessConfig, "joins": joins.JoinsConfig}
