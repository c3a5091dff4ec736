// pgjdbc's DatabaseMetaData (what DBeaver, Tableau and Metabase call) through Gatehouse, over
// the extended protocol (pgjdbc's default): run by bi-catalog.test.ts as
// `java -cp postgresql.jar MetadataJdbc.java <port> <user> <password>`; prints key=value lines.
import java.sql.*;
import java.util.*;

public class MetadataJdbc {
  static String tables(DatabaseMetaData md) throws SQLException {
    List<String> out = new ArrayList<>();
    try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE"})) {
      while (rs.next()) out.add(rs.getString("TABLE_NAME"));
    }
    Collections.sort(out);
    return String.join(",", out);
  }

  static String columns(DatabaseMetaData md, String table) throws SQLException {
    List<String> out = new ArrayList<>();
    try (ResultSet rs = md.getColumns(null, null, table, "%")) {
      while (rs.next()) {
        out.add(rs.getString("COLUMN_NAME") + ":" + JDBCType.valueOf(rs.getInt("DATA_TYPE")).getName() + ":" + rs.getString("TYPE_NAME"));
      }
    }
    return String.join(",", out);
  }

  public static void main(String[] args) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/warehouse?sslmode=disable";
    try (Connection c = DriverManager.getConnection(url, args[1], args[2])) {
      DatabaseMetaData md = c.getMetaData();
      long t0 = System.nanoTime();
      String first = tables(md);
      System.out.println("first_get_tables_ms=" + (System.nanoTime() - t0) / 1_000_000);
      System.out.println("tables=" + first);
      long t1 = System.nanoTime();
      tables(md);
      System.out.println("next_get_tables_ms=" + (System.nanoTime() - t1) / 1_000_000);
      System.out.println("columns.customers=" + columns(md, "customers"));
      System.out.println("columns.orders=" + columns(md, "orders"));
      System.out.println("columns.employees=" + columns(md, "employees"));
      List<String> schemas = new ArrayList<>();
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
      }
      System.out.println("schemas=" + String.join(",", schemas));
      List<String> pk = new ArrayList<>();
      try (ResultSet rs = md.getPrimaryKeys(null, null, "orders")) {
        while (rs.next()) pk.add(rs.getString("COLUMN_NAME"));
      }
      System.out.println("pk.orders=" + String.join(",", pk));
      // A topic query in the same session, past prepareThreshold (5): named statements on the
      // warehouse next to the catalog's.
      for (int i = 0; i < 6; i++) {
        try (PreparedStatement ps = c.prepareStatement("SELECT region, count(*) FROM orders WHERE amount > ? GROUP BY 1 ORDER BY 1")) {
          ps.setInt(1, 10);
          try (ResultSet rs = ps.executeQuery()) {
            StringBuilder sb = new StringBuilder();
            while (rs.next()) sb.append(rs.getString(1)).append(' ');
            if (i == 5) System.out.println("regions=" + sb.toString().trim());
          }
        }
        tables(md);
      }
      // Autocommit off (DBeaver's manual-commit mode): pgjdbc sends BEGIN in the metadata query's batch.
      c.setAutoCommit(false);
      System.out.println("tables_in_transaction=" + tables(md));
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM orders")) {
        rs.next();
        System.out.println("orders_in_transaction=" + rs.getLong(1));
      }
      c.commit();
    }
  }
}
