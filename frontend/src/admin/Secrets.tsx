/** Placeholder page: Secrets. */
export default function Secrets() {
  return <h1>Secrets</h1>;
}
