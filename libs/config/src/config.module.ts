import { DynamicModule, Module } from '@nestjs/common';

/** DI token of the typed, validated configuration object. */
export const APP_CONFIG = Symbol('APP_CONFIG');

/**
 * Provides a configuration object that `loadConfig` validated before the application was built, so a
 * bad environment stops start-up before any connection is opened.
 */
@Module({})
export class AppConfigModule {
  static forRoot(config: object): DynamicModule {
    return {
      module: AppConfigModule,
      global: true,
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG],
    };
  }
}
