"""Mind the Gap: data rewriting for stable off-policy SFT -- the pipeline's logic.

One module per concern (see DESIGN.md §2): data, prompts, generation, grading,
rewrite, training, metrics, report, demo. Snakemake scripts only call into these.
"""

__version__ = "0.1.0"
