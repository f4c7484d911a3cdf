import { useEffect, useState } from "react";
import { CONNECTION, SESSION_LOST } from "../api";
import "./admin.css";

/** One line above every page when something global went wrong: the session ended (any request answered
 * 401), or the gateway cannot be reached (the browser went offline or a request failed to connect). */
export default function Banner() {
  const [lost, setLost] = useState(false);
  const [offline, setOffline] = useState(!navigator.onLine);
  useEffect(() => {
    let failedAt = -1; // when the request that failed last began
    const onLost = () => setLost(true);
    const onConnection = (e: Event) => {
      const { ok, started } = (e as CustomEvent<{ ok: boolean; started: number }>).detail;
      if (!ok) {
        failedAt = Math.max(failedAt, started);
        setOffline(true);
      } else if (started >= failedAt) {
        setOffline(false);
      }
    };
    const goOffline = () => setOffline(true);
    const goOnline = () => {
      failedAt = -1;
      setOffline(false);
    };
    window.addEventListener(SESSION_LOST, onLost);
    window.addEventListener(CONNECTION, onConnection);
    window.addEventListener("offline", goOffline);
    window.addEventListener("online", goOnline);
    return () => {
      window.removeEventListener(SESSION_LOST, onLost);
      window.removeEventListener(CONNECTION, onConnection);
      window.removeEventListener("offline", goOffline);
      window.removeEventListener("online", goOnline);
    };
  }, []);
  if (!lost && !offline) return null;
  return (
    <div className="banner" role="alert" data-testid="banner">
      {lost && (
        <p data-testid="session-lost">
          <strong>Your session ended</strong> (it was signed out, revoked or expired): sign in again with the
          login link <code>mlops up</code> printed (<code>/?token=...</code>). What the page just asked for was not done.
        </p>
      )}
      {offline && (
        <p data-testid="offline">
          <strong>The gateway cannot be reached.</strong> Check the network and that <code>mlops up</code> still
          runs; this page retries with your next action.
        </p>
      )}
    </div>
  );
}
