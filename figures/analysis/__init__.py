"""The Tables 6-8 study (CIFAR-10): its plan and presets (plan), the training and surface jobs (stage), Table 6's
NASWOT scores (table6), the surfaces of Tables 7-8 (surfaces) and their Hessian numbers (hessian)."""
