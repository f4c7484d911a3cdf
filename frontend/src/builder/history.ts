// The undo stack: the commands done (with the state before each), and those undone.
import { useCallback, useReducer } from "react";
import type { Command, GraphState } from "./doc";

interface Entry {
  label: string;
  state: GraphState;
}
export interface History {
  past: Entry[];
  present: GraphState;
  future: Entry[];
}
type Action =
  | { type: "do"; command: Command }
  | { type: "undo" }
  | { type: "redo" }
  | { type: "reset"; state: GraphState };

const LIMIT = 500;

function reduce(h: History, a: Action): History {
  switch (a.type) {
    case "do": {
      const next = a.command.run(h.present);
      if (next === h.present) return h;
      return { past: [...h.past.slice(-LIMIT + 1), { label: a.command.label, state: h.present }], present: next, future: [] };
    }
    case "undo": {
      const last = h.past[h.past.length - 1];
      if (!last) return h;
      return { past: h.past.slice(0, -1), present: last.state, future: [{ label: last.label, state: h.present }, ...h.future] };
    }
    case "redo": {
      const first = h.future[0];
      if (!first) return h;
      return { past: [...h.past, { label: first.label, state: h.present }], present: first.state, future: h.future.slice(1) };
    }
    case "reset":
      return { past: [], present: a.state, future: [] };
  }
}

/** The graph state with its undo stack: `run` a command, `undo`, `redo`, or `reset` (not undoable). */
export function useHistory(initial: GraphState) {
  const [h, dispatch] = useReducer(reduce, { past: [], present: initial, future: [] });
  return {
    state: h.present,
    canUndo: h.past.length > 0,
    canRedo: h.future.length > 0,
    undoLabel: h.past[h.past.length - 1]?.label,
    redoLabel: h.future[0]?.label,
    run: useCallback((command: Command) => dispatch({ type: "do", command }), []),
    undo: useCallback(() => dispatch({ type: "undo" }), []),
    redo: useCallback(() => dispatch({ type: "redo" }), []),
    reset: useCallback((state: GraphState) => dispatch({ type: "reset", state }), []),
  };
}
