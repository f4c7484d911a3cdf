import { useState } from "react";
import { useNavigate } from "react-router";
import { api, type Run } from "../api";
import { Problems } from "../components";

export interface LaunchDialogProps {
  /** A catalogue ref (`pipeline/iris-classifier@1.0.0`) or inline spec documents. */
  pipeline: string | Record<string, unknown> | Record<string, unknown>[];
  /** Closes the dialog without launching. */
  onClose: () => void;
}

/** Placeholder: launch on local with defaults. Replaced by the full dialog (target, parameters, plan). */
export default function LaunchDialog({ pipeline, onClose }: LaunchDialogProps) {
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const launch = () =>
    api.post<Run>("/api/v1/runs", { pipeline, parameters: {} }).then((r) => navigate(`/runs/${r.id}`), setError);
  return (
    <div className="dialog" role="dialog" aria-label="Launch">
      <Problems error={error} />
      <button className="primary" onClick={launch}>Launch</button> <button onClick={onClose}>Cancel</button>
    </div>
  );
}
