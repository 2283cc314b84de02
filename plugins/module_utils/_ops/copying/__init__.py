# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy: the graph of what to copy (pure) and the streamed, verified transfer.
"""

__all__ = ["DEFAULT_CONCURRENCY"]

#: Blobs in flight. Chosen with bench/run.py (docs/performance.md): 8 was the
#: fastest of 1/2/4/8 on the multi-blob workloads; each stream adds about 2.5 MiB.
#: Here, not in :mod:`.image`, so that registry_copy's argument spec does not load the engine.
DEFAULT_CONCURRENCY = 8
