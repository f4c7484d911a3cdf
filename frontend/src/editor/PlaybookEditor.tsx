/** Placeholder page: PlaybookEditor. */
export default function PlaybookEditor() {
  return <h1>PlaybookEditor</h1>;
}
