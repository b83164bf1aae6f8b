import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsInt, IsOptional, IsString, Matches, Max, Min, ValidateBy } from 'class-validator';
import { TOPIC_PATTERN } from '@lib/contracts';

const TOPIC = new RegExp(TOPIC_PATTERN);
const TOPIC_RULE = 'must be 1-255 characters of [A-Za-z0-9._:/-] (no spaces or wildcards)';
/** Any text of 1–255 characters without control characters. */
const CONSUMER_ID = /^[^\p{Cc}]{1,255}$/u;
const CONSUMER_RULE = 'must be 1-255 characters without control characters';
const HEADER_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_HEADERS = 64;
/** Hard bounds of a duration field; the configured QUEUE_VISIBILITY_MAX_MS is checked by the service. */
const WEEK_MS = 7 * 24 * 3600 * 1000;

function isHeaderMap(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return (
    entries.length <= MAX_HEADERS &&
    entries.every(([key, text]) => HEADER_KEY.test(key) && typeof text === 'string')
  );
}

/** An object of at most 64 string values whose keys are 1–128 characters of `[A-Za-z0-9._:-]`. */
function IsHeaderMap(): PropertyDecorator {
  return ValidateBy({
    name: 'isHeaderMap',
    validator: {
      validate: isHeaderMap,
      defaultMessage: () =>
        `must be an object of at most ${MAX_HEADERS} string values with keys of 1-128 characters of [A-Za-z0-9._:-]`,
    },
  });
}

/** The `:topic` of a queue route (URL-encode a `/` in it as `%2F`). */
export class TopicParams {
  @ApiProperty({ example: 'emails', description: `1-255 characters of [A-Za-z0-9._:/-]` })
  @IsString()
  @Matches(TOPIC, { message: TOPIC_RULE })
  topic!: string;
}

export class PushMessageBody {
  @ApiProperty({ description: 'Any JSON value but null', example: 'Kirim email selamat datang' })
  @IsDefined()
  message!: unknown;

  @ApiPropertyOptional({ description: 'String values handed back with the message', example: { lang: 'id' } })
  @IsOptional()
  @IsHeaderMap()
  headers?: Record<string, string>;
}

export class ConsumerBody {
  @ApiProperty({ example: 'worker-bee' })
  @IsString()
  @Matches(CONSUMER_ID, { message: CONSUMER_RULE })
  consumer_id!: string;
}

export class PopBody extends ConsumerBody {
  @ApiPropertyOptional({
    description: 'How long the message stays invisible to other consumers (default QUEUE_VISIBILITY_MS)',
    minimum: 100,
  })
  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(WEEK_MS)
  visibility_ms?: number;

  @ApiPropertyOptional({
    description: 'Wait up to this long for a message when the topic is empty',
    default: 0,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(20_000)
  wait_ms?: number;
}

export class SettleBody extends ConsumerBody {
  @ApiProperty({ description: 'The message_id the pop returned', example: 'v1-42-1' })
  @IsString()
  message_id!: string;
}

export class NackBody extends SettleBody {
  @ApiPropertyOptional({ description: 'Redeliver after this long (default 0: at once)', default: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(WEEK_MS)
  delay_ms?: number;
}

/** The seed's `POST /queue/push` body. */
export class SeedPushBody extends PushMessageBody {
  @ApiProperty({ example: 'emails' })
  @IsString()
  @Matches(TOPIC, { message: TOPIC_RULE })
  topic!: string;
}

/** The seed's `GET /queue/pop/:topic/:consumer`. */
export class SeedPopParams extends TopicParams {
  @ApiProperty({ example: 'worker-bee' })
  @IsString()
  @Matches(CONSUMER_ID, { message: CONSUMER_RULE })
  consumer!: string;
}
