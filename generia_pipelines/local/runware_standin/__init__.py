"""An offline Runware: the WebSocket API as the real ``runware`` SDK (0.5.x) speaks it.

Messages are JSON arrays of tasks; answers are ``{"data": [...]}`` or ``{"errors": [...]}``,
each matched to its task by ``taskUUID``. Served: authentication (a wrong key gets
``invalidApiKey``), ping, ``imageInference`` (outputType URL, base64Data or dataURI;
outputFormat PNG, JPG or WEBP; numberResults, seed, includeCost, the NSFW flag),
``promptEnhance``, ``getResponse`` and ``getTaskDetails``. Pictures are drawn from the prompt
and seed, byte for byte reproducible; URL outputs download over HTTP on the same port.

taskUUIDs are unique, as on Runware: a task once accepted is remembered by the server, and a
task sent again under its taskUUID gets ``conflictTaskUUID`` (nothing drawn, nothing billed).
``getResponse`` returns the accepted task's results, each ``processing`` or ``success``;
``getTaskDetails`` its request and response. A taskUUID whose task was refused, failed
transiently or lost its connection before being processed is free to be used again.

:class:`Faults` break it on demand while it serves, from any thread, by rate or for the next
N calls: latency, transient errors, dropped connections, a billed image whose answer is lost,
authentications left unanswered, undecodable bytes, images of the wrong size or format,
results without image data or cost, NSFW flags. :class:`Stats` tally what it did and billed.

``await start()`` serves on the running loop, :class:`ThreadedRunwareStandin` on a thread of
its own (Dagster's ``materialize``, benchmarks), :class:`RunwareComponent` in the local stack.

Modules: ``protocol`` (prices, formats, error shapes, parameters), ``faults`` (faults and
stats), ``drawing`` (images and prompt variants), ``tasks`` (the task memory), ``generation``
(the two generating tasks), ``dispatch`` (a task's route by taskUUID), ``replies``,
``downloads`` (HTTP), ``server`` (connections, authentication), ``run`` (thread, stack, CLI).
"""

from generia_pipelines.local.runware_standin.drawing import enhance_texts, render_image
from generia_pipelines.local.runware_standin.faults import Faults, Stats
from generia_pipelines.local.runware_standin.protocol import (
    DEFAULT_API_KEY,
    ENHANCE_COST_USD,
    MAX_SEED,
    MODEL_COSTS,
)
from generia_pipelines.local.runware_standin.run import (
    RunwareComponent,
    ThreadedRunwareStandin,
    main,
)
from generia_pipelines.local.runware_standin.server import RunwareStandin, start

__all__ = [
    "DEFAULT_API_KEY",
    "ENHANCE_COST_USD",
    "MAX_SEED",
    "MODEL_COSTS",
    "Faults",
    "RunwareComponent",
    "RunwareStandin",
    "Stats",
    "ThreadedRunwareStandin",
    "enhance_texts",
    "main",
    "render_image",
    "start",
]
