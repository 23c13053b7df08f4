"""Models: PyMC graphs built from law specs (:mod:`.spec_model`; the joint loss-space model is the built-in spec
``joint_kaplan``), and the transfer (:mod:`.transfer`) and loss-law (:mod:`.losslaws`) models (fitted in
:mod:`bayes_scaling.inference`)."""
