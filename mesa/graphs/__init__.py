"""The SMES graphs: builders, node functions and the runtime context.

```python
from mesa.graphs import build_graph, SupportContext
graph = build_graph("stepwise")          # an uncompiled langgraph StateGraph
graph.add_node("retrieve", my_node)      # customise it the LangGraph way
graph = build_graph("stepwise", insert=[Insert("retrieve", my_node, before="recognize_emotion")])
app = graph.compile()
```
"""

from mesa.graphs import nodes
from mesa.graphs.context import Demonstration, DemonstrationSource, LabelClassifier, StrategyPolicy, SupportContext
from mesa.graphs.smes import (
    GRAPH_MODES,
    Insert,
    build_fused_graph,
    build_graph,
    build_stepwise_graph,
    compile_graph,
    insert_node,
    register_graph_mode,
)

__all__ = [
    "GRAPH_MODES",
    "Demonstration",
    "DemonstrationSource",
    "Insert",
    "LabelClassifier",
    "StrategyPolicy",
    "SupportContext",
    "build_fused_graph",
    "build_graph",
    "build_stepwise_graph",
    "compile_graph",
    "insert_node",
    "nodes",
    "register_graph_mode",
]
