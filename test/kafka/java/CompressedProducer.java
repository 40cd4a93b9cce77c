// Writes <count> JSON records to a topic with the real Java Kafka client and the given compression.type, so the
// compression tests read batches exactly as a Java application writes them. Run with Java's single-file launcher:
//
//   java -cp '<kafka libs>/*' CompressedProducer.java <bootstrap> <topic> <gzip|snappy|lz4|zstd> <count>
//
// Record i has key "k<i>" and value {"i":<i>,"text":"reading <i % 10> " repeated 10 times}, the records the tests
// expect. Large batches (256 KiB) so an LZ4 frame holds several 64 KiB blocks. Exits 1 if any record failed.
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringSerializer;

public class CompressedProducer {
  public static void main(String[] args) throws Exception {
    if (args.length != 4) {
      System.err.println("usage: CompressedProducer <bootstrap> <topic> <compression> <count>");
      System.exit(2);
    }
    String topic = args[1];
    int count = Integer.parseInt(args[3]);
    Properties props = new Properties();
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, args[2]);
    props.put(ProducerConfig.ACKS_CONFIG, "all");
    props.put(ProducerConfig.LINGER_MS_CONFIG, "100");
    props.put(ProducerConfig.BATCH_SIZE_CONFIG, "262144");
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    AtomicReference<Exception> failure = new AtomicReference<>();
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(props)) {
      for (int i = 0; i < count; i++) {
        String value = "{\"i\":" + i + ",\"text\":\"" + ("reading " + (i % 10) + " ").repeat(10) + "\"}";
        producer.send(new ProducerRecord<>(topic, "k" + i, value), (metadata, error) -> {
          if (error != null) failure.compareAndSet(null, error);
        });
      }
      producer.flush();
    }
    if (failure.get() != null) {
      System.err.println("send failed: " + failure.get());
      System.exit(1);
    }
    System.out.println("sent " + count + " records with " + args[2]);
  }
}
