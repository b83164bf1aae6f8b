import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Makes the current transaction's commit asynchronous (it returns before its WAL is flushed; the WAL
 * writer flushes it within 3 × `wal_writer_delay`, 600 ms by default). Used only where losing the
 * commit in a Postgres crash is harmless:
 * - Any later durable commit that saw this one's effects flushes it too (the WAL is flushed in order,
 *   and what a transaction saw committed lies before its own commit record). So a lost commit is one
 *   that nothing durable depended on: no grant, token or refusal was built on it.
 * - A release that granted nothing: lost, the lease is back as it was, held by a client that has
 *   stopped using it, until it expires (audited then). Nobody else held the resource meanwhile, no
 *   token was issued, and the log and the state agree (the release entry is lost with it).
 * - A request that starts or resumes a wait: the client has no answer yet. A crash ends every session,
 *   the replica's LISTEN session included, so the replica answers its waiters 503 (retry) and a
 *   surviving waiting row would be dropped as abandoned anyway: a lost wait is a request that was in
 *   flight when the server crashed.
 * Grants, renewals, refusals and timeouts stay durable: the client acts on their answer.
 */
const COMMIT_LAZILY = `PERFORM set_config('synchronous_commit', 'off', true)`;

/**
 * The lock of one resource, held until the transaction ends: every function takes it first, so
 * everything that happens to a resource is serialised across replicas, and the next statement sees what
 * the previous holder committed. A transaction-scoped advisory lock (keyed by schema and resource) costs
 * no row version and no WAL, unlike `SELECT … FOR UPDATE`; two names with the same hash only queue
 * behind each other. The two-key form keeps it apart from the single-key locks (`lock_graph_key()`).
 */
const lockResource = (resource: string): string =>
  `PERFORM pg_advisory_xact_lock(hashtext(current_schema()), hashtext(${resource}))`;

/**
 * The lock service's state: resources with their fencing counter, requests (holders and FIFO waiters),
 * the audit log, and the functions that change them. Each operation is one function call, so it is one
 * statement, one transaction and one round trip; every function first takes the resource's lock
 * (`lockResource`), which serialises everything that happens to one resource across all replicas, and
 * nothing else: the uncontended path takes no lock and updates no row that other resources use.
 *
 * - A waiting request belongs to the session of its replica's LISTEN connection (`session_pid`,
 *   `session_started`); when that session is gone (the replica died) the request no longer counts and
 *   is removed by the next settle of its resource. It also carries its wait deadline in `expires_at`.
 * - Adding a wait is the only step that adds wait-for edges, so it alone takes the transaction-scoped
 *   advisory lock `lock_graph_key()` before looking for a cycle: two requests that would close a cycle
 *   together cannot both pass the check. Grants, releases, expiries and timeouts only remove edges.
 * - Grants to waiters are returned to the caller (`grants`), which wakes its own waiters at once; only
 *   a grant to a waiter of another replica sends `NOTIFY lock_channel()` (the grants as JSON), because a
 *   notifying commit holds a database-wide lock until it is flushed.
 * - Commits that nothing durable can depend on are asynchronous (`synchronous_commit` off for that
 *   transaction only): a release that granted nothing, and a request that starts or resumes a wait.
 *   See `COMMIT_LAZILY`.
 */
export class CreatedLockTables1763900200000 implements MigrationInterface {
  name = 'CreatedLockTables1763900200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE lock_resources (
        resource text PRIMARY KEY,
        last_token bigint NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE lock_requests (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        resource text NOT NULL,
        client_id text NOT NULL,
        mode text NOT NULL CHECK (mode IN ('exclusive', 'shared')),
        state text NOT NULL CHECK (state IN ('waiting', 'held')),
        token bigint,
        ttl_ms integer NOT NULL CHECK (ttl_ms > 0),
        requested_at timestamptz NOT NULL,
        granted_at timestamptz,
        expires_at timestamptz NOT NULL,
        session_pid integer,
        session_started timestamptz,
        waiter_ref text,
        replica text NOT NULL,
        UNIQUE (resource, client_id),
        CHECK ((state = 'held') = (token IS NOT NULL))
      )`);
    await queryRunner.query(`CREATE INDEX lock_requests_expires_at_idx ON lock_requests (expires_at)`);
    // the deadlock search follows a client to the requests it waits on
    await queryRunner.query(
      `CREATE INDEX lock_requests_waiting_client_idx ON lock_requests (client_id) WHERE state = 'waiting'`,
    );
    await queryRunner.query(`
      CREATE TABLE lock_audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        event text NOT NULL,
        resource text NOT NULL,
        client_id text NOT NULL,
        mode text,
        token bigint,
        replica text,
        detail jsonb
      )`);
    await queryRunner.query(`CREATE INDEX lock_audit_resource_idx ON lock_audit (resource, id)`);
    await queryRunner.query(`CREATE INDEX lock_audit_client_idx ON lock_audit (client_id, id)`);
    await queryRunner.query(
      `CREATE INDEX lock_audit_expiry_idx ON lock_audit (resource, token) WHERE event = 'expiry'`,
    );

    await queryRunner.query(`
      CREATE FUNCTION lock_channel() RETURNS text LANGUAGE sql STABLE AS
      $$ SELECT 'locks_' || left(md5(current_schema()), 16) $$`);
    await queryRunner.query(`
      CREATE FUNCTION lock_graph_key() RETURNS bigint LANGUAGE sql STABLE AS
      $$ SELECT hashtext('toolkit-lock-graph:' || current_schema())::bigint $$`);
    // whether a waiting request's replica still listens: looks up one backend, not all of pg_stat_activity
    await queryRunner.query(`
      CREATE FUNCTION lock_session_alive(p_pid integer, p_started timestamptz) RETURNS boolean
      LANGUAGE plpgsql STABLE AS $$
      BEGIN
        RETURN p_pid IS NOT NULL
          AND EXISTS (SELECT 1 FROM pg_stat_get_activity(p_pid) a WHERE a.backend_start = p_started);
      END $$`);

    // a waiter counts while its deadline is ahead and its replica's session is alive; a holder while its lease is
    await queryRunner.query(`
      CREATE VIEW lock_live_requests AS
      SELECT q.* FROM lock_requests q
      WHERE q.expires_at > clock_timestamp()
        AND (q.state = 'held' OR lock_session_alive(q.session_pid, q.session_started))`);

    /*
     * Brings a resource up to date (the caller holds its row lock): expired leases end, waiters past
     * their deadline or of a dead session leave the queue, then waiters are granted from the head of
     * the queue for as long as they are compatible with the holders (FIFO: a shared request never
     * overtakes a queued exclusive one). Returns the holders' next lease expiry in ms from now and the
     * grants made ([{id, token, expires_at, waiter_ref}] or NULL). Grants to waiters of a replica other
     * than p_replica (or all, with p_notify_all) are notified.
     *
     * Every step that can make a waiter grantable (a release, an expiry, a waiter leaving) settles in
     * the same transaction, so between settles a waiter is never grantable: with no waiter and no
     * overdue lease there is nothing to do, which one read tells (the uncontended path).
     */
    await queryRunner.query(`
      CREATE FUNCTION lock_settle(p_resource text, p_now timestamptz, p_replica text, p_notify_all boolean DEFAULT false,
        OUT next_expiry_ms double precision, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_row lock_requests;
        v_exclusive integer;
        v_holders integer;
        v_dirty boolean;
        v_next timestamptz;
        v_token bigint;
        v_notify boolean := p_notify_all;
        v_payload text;
      BEGIN
        SELECT coalesce(bool_or(q.state = 'waiting' OR q.expires_at <= p_now), false),
               min(q.expires_at) FILTER (WHERE q.state = 'held')
          INTO v_dirty, v_next
          FROM lock_requests q WHERE q.resource = p_resource;
        IF NOT v_dirty THEN
          next_expiry_ms := extract(epoch FROM v_next - clock_timestamp()) * 1000;
          RETURN;
        END IF;

        FOR v_row IN
          DELETE FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'held' AND q.expires_at <= p_now
          RETURNING *
        LOOP
          INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
          VALUES ('expiry', v_row.resource, v_row.client_id, v_row.mode, v_row.token, p_replica,
                  jsonb_build_object('expired_at', v_row.expires_at));
        END LOOP;
        FOR v_row IN
          DELETE FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'waiting'
            AND (q.expires_at <= p_now OR NOT lock_session_alive(q.session_pid, q.session_started))
          RETURNING *
        LOOP
          INSERT INTO lock_audit (event, resource, client_id, mode, replica, detail)
          VALUES (CASE WHEN v_row.expires_at <= p_now THEN 'timeout' ELSE 'abandon' END,
                  v_row.resource, v_row.client_id, v_row.mode, p_replica, jsonb_build_object('replica', v_row.replica));
        END LOOP;
        SELECT count(*) FILTER (WHERE q.mode = 'exclusive'), count(*) INTO v_exclusive, v_holders
          FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'held';
        FOR v_row IN SELECT * FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'waiting' ORDER BY q.id LOOP
          EXIT WHEN (v_row.mode = 'exclusive' AND v_holders > 0) OR (v_row.mode = 'shared' AND v_exclusive > 0);
          UPDATE lock_resources r SET last_token = r.last_token + 1 WHERE r.resource = p_resource
          RETURNING r.last_token INTO v_token;
          UPDATE lock_requests q SET state = 'held', token = v_token, granted_at = p_now,
                 expires_at = p_now + q.ttl_ms * interval '1 millisecond'
           WHERE q.id = v_row.id RETURNING * INTO v_row;
          INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
          VALUES ('grant', v_row.resource, v_row.client_id, v_row.mode, v_row.token, p_replica,
                  jsonb_build_object('waited_ms', round(extract(epoch FROM p_now - v_row.requested_at) * 1000)));
          grants := coalesce(grants, '[]') || jsonb_build_array(jsonb_build_object('id', v_row.id,
                      'token', v_row.token, 'expires_at', v_row.expires_at, 'waiter_ref', v_row.waiter_ref));
          v_notify := v_notify OR v_row.replica IS DISTINCT FROM p_replica;
          v_holders := v_holders + 1;
          IF v_row.mode = 'exclusive' THEN v_exclusive := v_exclusive + 1; END IF;
        END LOOP;
        IF v_notify AND grants IS NOT NULL THEN
          v_payload := jsonb_build_object('resource', p_resource, 'grants', grants)::text;
          -- a payload must stay under 8000 bytes: without the grants, listeners read them from the table
          IF octet_length(v_payload) > 7900 THEN v_payload := jsonb_build_object('resource', p_resource)::text; END IF;
          PERFORM pg_notify(lock_channel(), v_payload);
        END IF;
        SELECT extract(epoch FROM min(q.expires_at) - clock_timestamp()) * 1000 INTO next_expiry_ms
          FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'held';
      END $$`);

    /*
     * Looks for a wait-for path from the blockers of a new request back to its client, breadth first,
     * following only the clients reached (a client's waiting requests by index, then each one's
     * blockers). An edge goes from a live waiter to each live conflicting holder of its resource and
     * to each live conflicting request queued before it (FIFO makes those real waits). Returns the cycle
     * as [{client, resource, blocked_by, blocker_state}, …] starting at the requesting client, or NULL.
     * The caller holds lock_graph_key().
     */
    await queryRunner.query(`
      CREATE FUNCTION lock_find_cycle(p_client text, p_resource text, p_blockers jsonb)
      RETURNS jsonb LANGUAGE plpgsql AS $$
      DECLARE
        v_now timestamptz := clock_timestamp();
        v_parent jsonb;
        v_next jsonb;
        v_frontier text[];
        v_node text;
        v_step jsonb;
        v_path jsonb := '[]';
      BEGIN
        SELECT jsonb_object_agg(b->>'client_id',
                 jsonb_build_object('from', p_client, 'resource', p_resource, 'state', b->>'state')),
               array_agg(DISTINCT b->>'client_id')
          INTO v_parent, v_frontier
          FROM jsonb_array_elements(p_blockers) b;
        WHILE NOT v_parent ? p_client AND cardinality(v_frontier) > 0 LOOP
          SELECT jsonb_object_agg(s.blocker,
                   jsonb_build_object('from', s.waiter, 'resource', s.resource, 'state', s.blocker_state)),
                 array_agg(s.blocker)
            INTO v_next, v_frontier
            FROM (SELECT DISTINCT ON (b.client_id) w.client_id AS waiter, w.resource,
                         b.client_id AS blocker, b.state AS blocker_state
                    FROM lock_requests w
                    JOIN lock_requests b
                      ON b.resource = w.resource AND b.client_id <> w.client_id
                     AND (w.mode = 'exclusive' OR b.mode = 'exclusive')
                     AND (b.state = 'held' OR b.id < w.id)
                   WHERE w.client_id = ANY (v_frontier) AND w.state = 'waiting'
                     AND w.expires_at > v_now AND lock_session_alive(w.session_pid, w.session_started)
                     AND b.expires_at > v_now
                     AND (b.state = 'held' OR lock_session_alive(b.session_pid, b.session_started))
                     AND NOT v_parent ? b.client_id
                   ORDER BY b.client_id, w.client_id) s;
          v_parent := v_parent || coalesce(v_next, '{}');
          v_frontier := coalesce(v_frontier, '{}');
        END LOOP;
        IF NOT v_parent ? p_client THEN RETURN NULL; END IF;
        v_node := p_client;
        LOOP
          v_step := v_parent -> v_node;
          v_path := jsonb_build_array(jsonb_build_object('client', v_step->>'from', 'resource', v_step->>'resource',
                      'blocked_by', v_node, 'blocker_state', v_step->>'state')) || v_path;
          v_node := v_step->>'from';
          EXIT WHEN v_node = p_client OR jsonb_array_length(v_path) > 10000;
        END LOOP;
        RETURN v_path;
      END $$`);

    /*
     * Outcomes: granted (token, expires_at), waiting (request_id, next expiry), conflict (wait_ms 0),
     * deadlock (cycle), mode_mismatch (the client already holds or awaits the resource in the other
     * mode). A client asking again for what it holds in the same mode gets its lease back, extended;
     * asking again for what it awaits takes over that place in the queue (a retry after its replica died
     * or its connection broke). The request is audited in the same statement as its outcome.
     */
    await queryRunner.query(`
      CREATE FUNCTION lock_acquire(p_resource text, p_client text, p_mode text, p_ttl_ms integer,
        p_wait_ms integer, p_session_pid integer, p_session_started timestamptz, p_waiter_ref text, p_replica text,
        OUT outcome text, OUT request_id bigint, OUT token bigint, OUT expires_at timestamptz,
        OUT holders jsonb, OUT cycle jsonb, OUT next_expiry_ms double precision, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_now timestamptz;
        v_settled boolean := false;
        v_state record;
        v_own lock_requests;
        v_blockers jsonb;
        v_request jsonb := jsonb_build_object('ttl_ms', p_ttl_ms, 'wait_ms', p_wait_ms);
      BEGIN
        ${lockResource('p_resource')};
        v_now := clock_timestamp();
        -- what lock_settle would look at first; it runs only when there is something to settle
        LOOP
          SELECT coalesce(bool_or(q.state = 'waiting' OR q.expires_at <= v_now), false) AS dirty,
                 min(q.expires_at) FILTER (WHERE q.state = 'held') AS next_expiry,
                 (array_agg(q ORDER BY q.id) FILTER (WHERE q.client_id = p_client))[1] AS own,
                 jsonb_agg(jsonb_build_object('client_id', q.client_id, 'mode', q.mode, 'state', q.state) ORDER BY q.id)
                   FILTER (WHERE q.client_id <> p_client AND (p_mode = 'exclusive' OR q.mode = 'exclusive')) AS blockers
            INTO v_state
            FROM lock_requests q WHERE q.resource = p_resource;
          EXIT WHEN v_settled OR NOT v_state.dirty;
          grants := (lock_settle(p_resource, v_now, p_replica)).grants;
          v_settled := true;
        END LOOP;
        next_expiry_ms := extract(epoch FROM v_state.next_expiry - clock_timestamp()) * 1000;
        v_own := v_state.own;
        v_blockers := v_state.blockers;

        IF v_own.id IS NOT NULL AND v_own.mode <> p_mode THEN
          outcome := 'mode_mismatch';
          holders := jsonb_build_array(jsonb_build_object('client_id', v_own.client_id, 'mode', v_own.mode, 'state', v_own.state));
          INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
          VALUES ('request', p_resource, p_client, p_mode, NULL, p_replica, v_request),
                 ('refusal', p_resource, p_client, v_own.mode, v_own.token, p_replica,
                  jsonb_build_object('reason', 'mode_mismatch', 'requested_mode', p_mode));
          RETURN;
        END IF;
        IF v_own.state = 'held' THEN
          UPDATE lock_requests q SET expires_at = greatest(q.expires_at, v_now + p_ttl_ms * interval '1 millisecond'), ttl_ms = p_ttl_ms
           WHERE q.id = v_own.id RETURNING * INTO v_own;
          INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
          VALUES ('request', p_resource, p_client, p_mode, NULL, p_replica, v_request),
                 ('grant', p_resource, p_client, p_mode, v_own.token, p_replica, jsonb_build_object('already_held', true));
          outcome := 'granted'; request_id := v_own.id; token := v_own.token; expires_at := v_own.expires_at;
          RETURN;
        END IF;

        IF v_blockers IS NULL AND v_own.id IS NULL THEN
          -- the uncontended path: token, lease and both audit rows (request first) in one statement;
          -- a resource locked for the first time gets its row (and counter) on the way
          LOOP
            WITH bumped AS (
                   UPDATE lock_resources r SET last_token = r.last_token + 1 WHERE r.resource = p_resource
                   RETURNING r.last_token),
                 granted AS (
                   INSERT INTO lock_requests (resource, client_id, mode, state, token, ttl_ms, requested_at, granted_at, expires_at, replica)
                   SELECT p_resource, p_client, p_mode, 'held', b.last_token, p_ttl_ms, v_now, v_now,
                          v_now + p_ttl_ms * interval '1 millisecond', p_replica
                     FROM bumped b
                   RETURNING lock_requests.id, lock_requests.token, lock_requests.expires_at),
                 logged AS (
                   INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
                   SELECT e.event, p_resource, p_client, p_mode, e.token, p_replica, e.detail
                     FROM granted g, LATERAL (VALUES (1, 'request', NULL::bigint, v_request), (2, 'grant', g.token, NULL::jsonb))
                          AS e(n, event, token, detail)
                    ORDER BY e.n)
            SELECT g.id, g.token, g.expires_at INTO request_id, token, expires_at FROM granted g;
            EXIT WHEN FOUND;
            INSERT INTO lock_resources (resource) VALUES (p_resource) ON CONFLICT DO NOTHING;
          END LOOP;
          outcome := 'granted';
          RETURN;
        END IF;

        IF p_wait_ms = 0 THEN
          outcome := 'conflict';
          SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', q.client_id, 'mode', q.mode,
                   'granted_at', q.granted_at, 'expires_at', q.expires_at) ORDER BY q.id), '[]')
            INTO holders FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'held';
          INSERT INTO lock_audit (event, resource, client_id, mode, replica, detail)
          VALUES ('request', p_resource, p_client, p_mode, p_replica, v_request),
                 ('refusal', p_resource, p_client, p_mode, p_replica,
                  jsonb_build_object('reason', 'conflict', 'blocked_by', v_blockers));
          RETURN;
        END IF;

        IF v_own.id IS NOT NULL THEN
          UPDATE lock_requests q SET session_pid = p_session_pid, session_started = p_session_started,
                 waiter_ref = p_waiter_ref, ttl_ms = p_ttl_ms, replica = p_replica,
                 expires_at = v_now + p_wait_ms * interval '1 millisecond'
           WHERE q.id = v_own.id;
          INSERT INTO lock_audit (event, resource, client_id, mode, replica, detail)
          VALUES ('request', p_resource, p_client, p_mode, p_replica, v_request),
                 ('wait', p_resource, p_client, p_mode, p_replica, jsonb_build_object('blocked_by', v_blockers, 'resumed', true));
          ${COMMIT_LAZILY};
          outcome := 'waiting'; request_id := v_own.id;
          RETURN;
        END IF;

        PERFORM pg_advisory_xact_lock(lock_graph_key());
        cycle := lock_find_cycle(p_client, p_resource, v_blockers);
        IF cycle IS NOT NULL THEN
          outcome := 'deadlock';
          INSERT INTO lock_audit (event, resource, client_id, mode, replica, detail)
          VALUES ('request', p_resource, p_client, p_mode, p_replica, v_request),
                 ('deadlock', p_resource, p_client, p_mode, p_replica, jsonb_build_object('cycle', cycle));
          RETURN;
        END IF;
        INSERT INTO lock_requests AS q (resource, client_id, mode, state, ttl_ms, requested_at, expires_at,
                                        session_pid, session_started, waiter_ref, replica)
        VALUES (p_resource, p_client, p_mode, 'waiting', p_ttl_ms, v_now, v_now + p_wait_ms * interval '1 millisecond',
                p_session_pid, p_session_started, p_waiter_ref, p_replica)
        RETURNING q.id INTO request_id;
        INSERT INTO lock_audit (event, resource, client_id, mode, replica, detail)
        VALUES ('request', p_resource, p_client, p_mode, p_replica, v_request),
               ('wait', p_resource, p_client, p_mode, p_replica, jsonb_build_object('blocked_by', v_blockers));
        ${COMMIT_LAZILY};
        outcome := 'waiting';
      END $$`);

    /*
     * Release and renew: only the live holder (client and token; the seed's release gives no token and
     * is matched by client alone) may. Outcomes: released/renewed, lease_expired (the lease ran out
     * first: the caller's work was not protected since then), not_holder. A release returns the grants
     * its settle made; one that granted nothing commits asynchronously (see COMMIT_LAZILY).
     */
    await queryRunner.query(`
      CREATE FUNCTION lock_release(p_resource text, p_client text, p_token bigint, p_replica text,
        OUT outcome text, OUT token bigint, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_now timestamptz;
        v_released record;
        v_own lock_requests;
      BEGIN
        ${lockResource('p_resource')};
        v_now := clock_timestamp();
        -- the subquery reads the rows as they were before the delete: the released lease, live, does not count
        WITH released AS (
               DELETE FROM lock_requests q WHERE q.resource = p_resource AND q.client_id = p_client AND q.state = 'held'
                  AND (p_token IS NULL OR q.token = p_token) AND q.expires_at > v_now
               RETURNING q.*),
             logged AS (
               INSERT INTO lock_audit (event, resource, client_id, mode, token, replica)
               SELECT 'release', r.resource, r.client_id, r.mode, r.token, p_replica FROM released r)
        SELECT r.token,
               (SELECT coalesce(bool_or(q.state = 'waiting' OR q.expires_at <= v_now), false)
                  FROM lock_requests q WHERE q.resource = p_resource) AS dirty
          INTO v_released FROM released r;
        IF FOUND THEN
          IF v_released.dirty THEN grants := (lock_settle(p_resource, v_now, p_replica)).grants; END IF;
          IF grants IS NULL THEN ${COMMIT_LAZILY}; END IF;
          outcome := 'released'; token := v_released.token;
          RETURN;
        END IF;
        SELECT * INTO v_own FROM lock_requests q WHERE q.resource = p_resource AND q.client_id = p_client
           AND q.state = 'held' AND (p_token IS NULL OR q.token = p_token);
        grants := (lock_settle(p_resource, v_now, p_replica)).grants;
        outcome := CASE WHEN v_own.id IS NOT NULL OR (p_token IS NOT NULL AND EXISTS (
                     SELECT 1 FROM lock_audit a WHERE a.resource = p_resource AND a.token = p_token
                        AND a.event = 'expiry' AND a.client_id = p_client))
                   THEN 'lease_expired' ELSE 'not_holder' END;
        token := coalesce(v_own.token, p_token);
        INSERT INTO lock_audit (event, resource, client_id, token, replica, detail)
        VALUES ('refusal', p_resource, p_client, p_token, p_replica, jsonb_build_object('reason', outcome, 'operation', 'release'));
      END $$`);
    await queryRunner.query(`
      CREATE FUNCTION lock_renew(p_resource text, p_client text, p_token bigint, p_ttl_ms integer, p_replica text,
        OUT outcome text, OUT mode text, OUT expires_at timestamptz, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_now timestamptz;
        v_own lock_requests;
      BEGIN
        ${lockResource('p_resource')};
        v_now := clock_timestamp();
        UPDATE lock_requests q SET expires_at = v_now + p_ttl_ms * interval '1 millisecond', ttl_ms = p_ttl_ms
         WHERE q.resource = p_resource AND q.client_id = p_client AND q.state = 'held' AND q.token = p_token
           AND q.expires_at > v_now
        RETURNING * INTO v_own;
        IF FOUND THEN
          INSERT INTO lock_audit (event, resource, client_id, mode, token, replica, detail)
          VALUES ('renew', v_own.resource, v_own.client_id, v_own.mode, v_own.token, p_replica,
                  jsonb_build_object('ttl_ms', p_ttl_ms));
          outcome := 'renewed'; mode := v_own.mode; expires_at := v_own.expires_at;
          RETURN;
        END IF;
        SELECT * INTO v_own FROM lock_requests q WHERE q.resource = p_resource AND q.client_id = p_client
           AND q.state = 'held' AND q.token = p_token;
        grants := (lock_settle(p_resource, v_now, p_replica)).grants;
        outcome := CASE WHEN v_own.id IS NOT NULL OR EXISTS (
                     SELECT 1 FROM lock_audit a WHERE a.resource = p_resource AND a.token = p_token
                        AND a.event = 'expiry' AND a.client_id = p_client)
                   THEN 'lease_expired' ELSE 'not_holder' END;
        INSERT INTO lock_audit (event, resource, client_id, token, replica, detail)
        VALUES ('refusal', p_resource, p_client, p_token, p_replica, jsonb_build_object('reason', outcome, 'operation', 'renew'));
      END $$`);

    /*
     * Ends a wait whose deadline passed on its replica. Outcomes: granted (it was granted just before:
     * the caller gets the lease rather than leaving it to expire), cancelled (removed, with the holders
     * it waited for, and the grants its leaving allowed), superseded (a retry of the same client took
     * the place over), gone (another settle removed it first, past its deadline: with the holders too).
     */
    await queryRunner.query(`
      CREATE FUNCTION lock_cancel_wait(p_request_id bigint, p_resource text, p_waiter_ref text, p_replica text,
        OUT outcome text, OUT token bigint, OUT expires_at timestamptz, OUT holders jsonb, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_own lock_requests;
        v_now timestamptz;
      BEGIN
        ${lockResource('p_resource')};
        SELECT * INTO v_own FROM lock_requests q WHERE q.id = p_request_id AND q.resource = p_resource;
        IF NOT FOUND THEN
          outcome := 'gone';
        ELSIF v_own.waiter_ref IS DISTINCT FROM p_waiter_ref THEN
          outcome := 'superseded';
          RETURN;
        ELSIF v_own.state = 'held' THEN
          outcome := 'granted'; token := v_own.token; expires_at := v_own.expires_at;
          RETURN;
        ELSE
          v_now := clock_timestamp();
          DELETE FROM lock_requests WHERE id = v_own.id;
          INSERT INTO lock_audit (event, resource, client_id, mode, replica)
          VALUES ('timeout', v_own.resource, v_own.client_id, v_own.mode, p_replica);
          grants := (lock_settle(p_resource, v_now, p_replica)).grants;
          outcome := 'cancelled';
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object('client_id', q.client_id, 'mode', q.mode,
                 'granted_at', q.granted_at, 'expires_at', q.expires_at) ORDER BY q.id), '[]')
          INTO holders FROM lock_requests q WHERE q.resource = p_resource AND q.state = 'held';
      END $$`);

    // the timer of a replica whose waiters wait for a lease to run out: settles the resource
    await queryRunner.query(`
      CREATE FUNCTION lock_sweep(p_resource text, p_replica text, OUT next_expiry_ms double precision, OUT grants jsonb)
      LANGUAGE plpgsql AS $$
      BEGIN
        ${lockResource('p_resource')};
        SELECT * INTO next_expiry_ms, grants FROM lock_settle(p_resource, clock_timestamp(), p_replica);
      END $$`);
    // housekeeping: settles resources with overdue leases or abandoned waits that nobody touches (and
    // notifies every grant: the caller does not look at them)
    await queryRunner.query(`
      CREATE FUNCTION lock_sweep_overdue(p_replica text, p_limit integer) RETURNS integer
      LANGUAGE plpgsql AS $$
      DECLARE
        v_resource text;
        v_settled integer := 0;
      BEGIN
        FOR v_resource IN
          SELECT DISTINCT s.resource FROM (
            SELECT q.resource FROM lock_requests q WHERE q.expires_at <= clock_timestamp()
            UNION ALL
            SELECT q.resource FROM lock_requests q
             WHERE q.state = 'waiting' AND NOT lock_session_alive(q.session_pid, q.session_started)) s
          LIMIT p_limit
        LOOP
          IF pg_try_advisory_xact_lock(hashtext(current_schema()), hashtext(v_resource)) THEN
            PERFORM lock_settle(v_resource, clock_timestamp(), p_replica, true);
            v_settled := v_settled + 1;
          END IF;
        END LOOP;
        RETURN v_settled;
      END $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP VIEW IF EXISTS lock_live_requests`);
    for (const fn of [
      'lock_sweep_overdue',
      'lock_sweep',
      'lock_cancel_wait',
      'lock_renew',
      'lock_release',
      'lock_acquire',
      'lock_find_cycle',
      'lock_settle',
      'lock_session_alive',
      'lock_graph_key',
      'lock_channel',
    ]) {
      await queryRunner.query(`DROP FUNCTION IF EXISTS ${fn}`);
    }
    await queryRunner.query(`DROP TABLE IF EXISTS lock_audit, lock_requests, lock_resources`);
  }
}
