"""Models: PyMC graphs built from law specs (:mod:`.spec_model`), and the transfer (:mod:`.transfer`),
loss-law (:mod:`.losslaws`) and joint (:mod:`.joint`) models (fitted in :mod:`bayes_scaling.inference`)."""
