"""coursekit: the course's machinery around the VAE code, kept out of ``vaecourse`` so that the package
a student reads holds what the chapters teach (models, maths, the trainer, data, figures) and no more.

    live     -- the HTML book's live figures: a chapter exports what a figure needs (a decoder's
                weights, precomputed results) as JSON and shows a snippet that the page's JavaScript
                draws, no kernel involved (``from coursekit import live``).
    grading  -- what the exercises' test cells share: comparisons that teach, seeds, own-work checks,
                pointers into the chapters (``import coursekit.grading as vg``).
    check    -- the students' check of a notebook before they submit it
                (``python -m coursekit.check ex3_gaussian_kl.ipynb``).

Installed with ``vaecourse`` (one distribution, two packages). Nothing here is imported by ``vaecourse``.
"""
