/**
 * Every stream and subject name of the product, derived from one namespace so that several
 * deployments (or tests) share a NATS server without seeing each other. A client-controlled
 * string never becomes a subject token: events travel on `<ns>.events.p.<partition>`.
 */
export interface MessagingNames {
  namespace: string;
  eventsStream: string;
  deadLetterStream: string;
  eventsSubject(partition: number): string;
  eventsSubjects: string;
  deadLetterSubject: string;
  eventsConsumer(partition: number): string;
}

const NAMESPACE_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

export function messagingNames(namespace: string): MessagingNames {
  if (!NAMESPACE_PATTERN.test(namespace)) {
    throw new Error(`NATS namespace "${namespace}" must match ${NAMESPACE_PATTERN.source}`);
  }
  const upper = namespace.toUpperCase();
  return {
    namespace,
    eventsStream: `${upper}_EVENTS`,
    deadLetterStream: `${upper}_EVENTS_DLQ`,
    eventsSubject: (partition) => `${namespace}.events.p.${partition}`,
    eventsSubjects: `${namespace}.events.p.*`,
    deadLetterSubject: `${namespace}.events.dlq`,
    eventsConsumer: (partition) => `aggregator-p${partition}`,
  };
}

/** Headers the pipeline sets on its JetStream messages. */
export const Headers = {
  /** On a dead letter: the subject the message was consumed from. */
  OriginalSubject: 'Toolkit-Original-Subject',
  /** On a dead letter: its sequence in the events stream. */
  OriginalSequence: 'Toolkit-Original-Sequence',
  /** On a dead letter: why it was set aside. */
  Reason: 'Toolkit-Dead-Letter-Reason',
  /** On a dead letter: how many attempts were made. */
  Attempts: 'Toolkit-Attempts',
} as const;
