/** Placeholder page: Targets. */
export default function Targets() {
  return <h1>Targets</h1>;
}
