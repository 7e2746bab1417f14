package wikiflow.peers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * The Kafka Streams peer of wfbench: reads recentchange events (JSON values) from a
 * topic and keeps, with processing.guarantee=exactly_once_v2, a count per meta.domain
 * and a 1-minute tumbling count per (wiki, type) by event time (meta.dt). Both tables
 * are written as their changelogs to output topics: key domain, and key
 * "wiki|type|window start ms"; values are the counts as decimal strings.
 *
 * <p>Arguments: bootstrap input-topic application-id domain-topic window-topic state-dir.
 */
public final class CountJob {
  private static final ObjectMapper JSON = new ObjectMapper();

  private CountJob() {}

  /** Event is the part of a recentchange event the job counts. */
  record Event(String domain, String wiki, String type, long dtMs) {}

  static Event parse(String value) {
    try {
      JsonNode n = JSON.readTree(value);
      JsonNode meta = n.path("meta");
      long dt = Instant.parse(meta.path("dt").asText()).toEpochMilli();
      return new Event(meta.path("domain").asText(), n.path("wiki").asText(), n.path("type").asText(), dt);
    } catch (Exception e) {
      return null;
    }
  }

  /** EventTime takes a record's timestamp from meta.dt of its JSON value. */
  public static final class EventTime implements TimestampExtractor {
    /** Kafka Streams instantiates the extractor by reflection: it needs a public constructor. */
    public EventTime() {}

    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      Event e = record.value() instanceof String s ? parse(s) : null;
      return e != null ? e.dtMs() : record.timestamp();
    }
  }

  static Properties config(String bootstrap, String appId, String stateDir) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
    p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    p.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, EventTime.class);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    return p;
  }

  static void topology(StreamsBuilder b, String input, String domainTopic, String windowTopic) {
    KStream<String, Event> events = b.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
        .mapValues(CountJob::parse)
        .filter((k, e) -> e != null);
    // Only keys cross the repartition topics: the values there are empty strings, so
    // the job needs no serde for Event.
    events.map((k, e) -> KeyValue.pair(e.domain(), ""))
        .groupByKey(Grouped.with("by-domain", Serdes.String(), Serdes.String()))
        .count()
        .toStream()
        .mapValues(String::valueOf)
        .to(domainTopic, Produced.with(Serdes.String(), Serdes.String()));
    events.map((k, e) -> KeyValue.pair(e.wiki() + "|" + e.type(), ""))
        .groupByKey(Grouped.with("by-wiki-type", Serdes.String(), Serdes.String()))
        // A day of grace: reading a backlog, one input partition can run minutes of
        // event time ahead of another, and a shorter grace drops the slower one's
        // events as late (wikiflow's minute buckets accept any lateness).
        .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofHours(24)))
        .count()
        .toStream()
        .map((w, n) -> KeyValue.pair(w.key() + "|" + w.window().start(), String.valueOf(n)))
        .to(windowTopic, Produced.with(Serdes.String(), Serdes.String()));
  }

  /** Runs the job until SIGTERM. */
  public static void main(String[] args) throws InterruptedException {
    if (args.length != 6) {
      System.err.println("usage: CountJob bootstrap input-topic application-id domain-topic window-topic state-dir");
      System.exit(2);
    }
    StreamsBuilder b = new StreamsBuilder();
    topology(b, args[1], args[3], args[4]);
    KafkaStreams streams = new KafkaStreams(b.build(), config(args[0], args[2], args[5]));
    CountDownLatch done = new CountDownLatch(1);
    Map<String, Integer> exit = new HashMap<>();
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("kstreams-peer: " + e);
      exit.put("code", 1);
      done.countDown();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(Duration.ofSeconds(10));
      done.countDown();
    }));
    streams.start();
    System.err.println("kstreams-peer: started " + args[2]);
    done.await();
    System.exit(exit.getOrDefault("code", 0));
  }
}
