-- Distance search walks the locations nearest first and stops once it has a page.
--
-- Each location gets its point in Earth-centred coordinates (kilometres on a sphere of the mean
-- Earth radius, 6371.0088 km, the same radius as `domain::geo::EARTH_RADIUS_KM`) in a `cube`, so a
-- GiST index can hand out locations in order of straight-line (chord) distance from a search
-- point, and bound them to the cube around the search circle. The chord orders points exactly as
-- the great-circle distance does (arc = 2R·asin(chord / 2R)), which is how a search reports it.
-- `cube` ships with PostgreSQL's contrib modules and is a trusted extension.

CREATE EXTENSION IF NOT EXISTS cube;

CREATE FUNCTION earth_point(latitude double precision, longitude double precision)
    RETURNS cube
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN cube(ARRAY[
        6371.0088 * cos(radians(latitude)) * cos(radians(longitude)),
        6371.0088 * cos(radians(latitude)) * sin(radians(longitude)),
        6371.0088 * sin(radians(latitude))
    ]);

ALTER TABLE clinic_locations
    ADD COLUMN position cube GENERATED ALWAYS AS (earth_point(latitude, longitude)) STORED;

DROP INDEX clinic_locations_position;
CREATE INDEX clinic_locations_nearest ON clinic_locations USING gist (position);
