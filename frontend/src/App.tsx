import { lazy, Suspense, useEffect, useState } from "react";
import { NavLink, Route, Routes } from "react-router";
import { api, type Session } from "./api";
import { Problems } from "./components";
import Catalogue from "./pages/Catalogue";
import EntryPage from "./pages/Entry";
import Home from "./pages/Home";
import Runs from "./pages/Runs";
import Keys from "./admin/Keys";
import Secrets from "./admin/Secrets";
import Targets from "./admin/Targets";
import Banner from "./admin/Banner";

// the heavy screens (the canvas, the code editor, the run's graph) load when first opened
const Builder = lazy(() => import("./builder/Builder"));
const PlaybookEditor = lazy(() => import("./editor/PlaybookEditor"));
const RunPage = lazy(() => import("./pages/Run"));
const Monitoring = lazy(() => import("./monitoring/Monitoring"));

/** The shell: who is signed in, the navigation, and the page of the address. */
export default function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api.session().then(setSession, setError);
  }, []);
  if (error) return <main><Problems error={error} /></main>;
  if (session === undefined) return <main className="loading">Loading…</main>;
  if (session === null) {
    return (
      <main className="signed-out">
        <h1>MLOps No-Code Platform</h1>
        <p>
          Not signed in: open the login link <code>mlops up</code> printed (<code>/?token=...</code>).
        </p>
        <p><a href="/docs">API documentation</a></p>
      </main>
    );
  }
  return (
    <>
      <header>
        <a className="skip" href="#main">Skip to content</a>
        <span className="brand">MLOps No-Code</span>
        <nav>
          <NavLink to="/" end>Home</NavLink>
          <NavLink to="/catalogue">Catalogue</NavLink>
          <NavLink to="/builder/new/pipeline">Builder</NavLink>
          <NavLink to="/editor/new">New playbook</NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/monitoring">Monitoring</NavLink>
          <NavLink to="/targets">Targets</NavLink>
          <NavLink to="/secrets">Secrets</NavLink>
          <NavLink to="/keys">Keys</NavLink>
          <a href="/docs">API</a>
        </nav>
        <span className="who" title={session.scopes.join(", ")}>key {session.key_id}</span>
        <form method="post" action="/logout">
          <button type="submit">Sign out</button>
        </form>
      </header>
      <Banner />
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p className="loading">Loading…</p>}>
        <Routes>
          <Route path="/" element={<Home />} />
          <Route path="/catalogue" element={<Catalogue />} />
          <Route path="/catalogue/:kind/:name" element={<EntryPage />} />
          <Route path="/runs" element={<Runs />} />
          <Route path="/runs/:id" element={<RunPage />} />
          <Route path="/builder/new/:kind" element={<Builder />} />
          <Route path="/builder/:kind/:name" element={<Builder />} />
          <Route path="/editor/new" element={<PlaybookEditor />} />
          <Route path="/editor/:name" element={<PlaybookEditor />} />
          <Route path="/monitoring" element={<Monitoring />} />
          <Route path="/targets" element={<Targets />} />
          <Route path="/secrets" element={<Secrets />} />
          <Route path="/keys" element={<Keys />} />
          <Route path="*" element={<p>No such page. <a href="/">Home</a></p>} />
        </Routes>
        </Suspense>
      </main>
    </>
  );
}
