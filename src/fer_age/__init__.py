"""fer-age: do facial emotion recognition models generalise across age groups?

The pipeline, one stage module each (``fer-age <stage>``): ``sample`` → ``crop`` → ``split`` →
``train`` / ``pool`` → ``evaluate`` → ``explain``. Stages share only ``config`` (typed params),
``layout`` (stage contracts: paths, file names, records) and helper modules.
"""
