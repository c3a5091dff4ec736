// pgjdbc with readOnly=true&readOnlyMode=always and autocommit off (issue 16): it sends
// SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, then READ WRITE when autocommit goes
// off, then BEGIN READ ONLY for each transaction. Run by drivers-governed.test.ts as
// `java -cp postgresql.jar ReadOnlyJdbc.java <port> <user> <password>`; prints key=value lines.
import java.sql.*;
import java.util.Properties;

public class ReadOnlyJdbc {
  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/warehouse?readOnly=true&readOnlyMode=always&sslmode=disable";
    Properties p = new Properties();
    p.setProperty("user", args[1]);
    p.setProperty("password", args[2]);
    try (Connection c = DriverManager.getConnection(url, p)) {
      c.setAutoCommit(false);
      c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM orders")) {
        r.next();
        System.out.println("count=" + r.getLong(1));
      }
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SHOW transaction_read_only")) {
        r.next();
        System.out.println("transaction_read_only=" + r.getString(1));
      }
      c.commit();
      c.setAutoCommit(true);
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SHOW default_transaction_read_only")) {
        r.next();
        System.out.println("default_transaction_read_only=" + r.getString(1));
      }
      System.out.println("ok=true");
    } catch (SQLException e) {
      System.out.println("sqlstate=" + e.getSQLState());
      System.out.println("error=" + e.getMessage().replace('\n', ' '));
    }
  }
}
