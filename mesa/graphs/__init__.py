"""The SMES graphs: builders, node functions and the runtime context.

```python
from mesa.graphs import build_graph, SupportContext
graph = build_graph("stepwise")          # an uncompiled langgraph StateGraph
graph.add_node("retrieve", my_node)      # customise it the LangGraph way
app = graph.compile()
```
"""

from mesa.graphs import nodes
from mesa.graphs.context import Demonstration, DemonstrationSource, LabelClassifier, StrategyPolicy, SupportContext
from mesa.graphs.smes import (
    GRAPH_MODES,
    build_fused_graph,
    build_graph,
    build_stepwise_graph,
    compile_graph,
    register_graph_mode,
)

__all__ = [
    "GRAPH_MODES",
    "Demonstration",
    "DemonstrationSource",
    "LabelClassifier",
    "StrategyPolicy",
    "SupportContext",
    "build_fused_graph",
    "build_graph",
    "build_stepwise_graph",
    "compile_graph",
    "nodes",
    "register_graph_mode",
]
