import {
  DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
} from '@nestjs/common';

import { NatsClient, type NatsConnectOptions } from './nats-client.js';
import { declareStreams, type StreamDeclaration } from './streams.js';

export interface MessagingOptions {
  connection: NatsConnectOptions;
  /** Streams this service needs; created or updated at start-up. */
  streams: StreamDeclaration[];
}

/** DI token of the messaging options; `NatsClient` is injected by its class. */
export const MESSAGING_OPTIONS = Symbol('MESSAGING_OPTIONS');

@Injectable()
class NatsLifecycle implements OnApplicationShutdown {
  private readonly logger = new Logger('Messaging');
  constructor(@Inject(NatsClient) private readonly client: NatsClient) {}

  async onApplicationShutdown(): Promise<void> {
    await this.client.drain();
    this.logger.log('NATS connection drained');
  }
}

/**
 * Connects to NATS once per process and declares the service's streams before anything uses them.
 * The connection is drained after every other shutdown hook has run.
 */
@Module({})
export class MessagingModule {
  static forRoot(options: MessagingOptions): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      providers: [
        { provide: MESSAGING_OPTIONS, useValue: options },
        {
          provide: NatsClient,
          inject: [MESSAGING_OPTIONS],
          useFactory: async (opts: MessagingOptions): Promise<NatsClient> => {
            const client = await NatsClient.connect(opts.connection);
            await declareStreams(client.jsm, opts.streams);
            return client;
          },
        },
        NatsLifecycle,
      ],
      exports: [NatsClient, MESSAGING_OPTIONS],
    };
  }
}
