"""``python -m generia_pipelines.local.runware_standin``: serve until interrupted."""

from generia_pipelines.local.runware_standin.run import main

main()
