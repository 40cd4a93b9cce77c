// Decodes LZ4 frame files with the Kafka Java client's own reader (the one brokers and Java consumers use) and
// prints "<file> <length> <sha-256 hex>" for each, so a test can check that what this package writes reads back
// in Java. Run with Java's single-file launcher:
//
//   java -cp '<kafka libs>/*' Lz4FrameCheck.java <file>...
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.apache.kafka.common.compress.Lz4Compression;
import org.apache.kafka.common.record.RecordBatch;
import org.apache.kafka.common.utils.BufferSupplier;

public class Lz4FrameCheck {
  public static void main(String[] args) throws Exception {
    Lz4Compression lz4 = new Lz4Compression.Builder().build();
    for (String file : args) {
      ByteBuffer frame = ByteBuffer.wrap(Files.readAllBytes(Path.of(file)));
      try (InputStream in = lz4.wrapForInput(frame, RecordBatch.MAGIC_VALUE_V2, BufferSupplier.create())) {
        byte[] data = in.readAllBytes();
        String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        System.out.println(file + " " + data.length + " " + digest);
      }
    }
  }
}
