{#- The latest run's segment of each customer, beside the columns it is profiled on.
    A view on DuckDB: writing this join of every customer as a table (compressing each
    string again) cost more than its readers' own joins, and its readers want few columns
    (the CRM export two, the profiles an aggregate). Its rules are the assignments' own,
    checked once on the source (_sources.yml) before anything reads them. A table on Spark,
    where a view would run the join again in each of its readers' jobs and in the copy back
    to DuckDB. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view') }}
{%- set columns = mart_columns() | rejectattr('role', 'equalto', 'label') | list -%}

with

customers as (

    select * from {{ ref('customer_features') }}

),

assignments as (

    select * from {{ source('segmentation', 'segment_assignments') }}

),

final as (

    select
        customers.customer_id,
        cast(assignments.segment_id as integer) as segment_id,
        cast(assignments.distance_to_centroid as double) as distance_to_centroid,
        assignments.run_id
        {%- for column in columns %},
        customers.{{ column.name }}
        {%- if column.ordered %},
        customers.{{ column.name }}_level
        {%- endif %}
        {%- endfor %}

    from customers
    inner join assignments
        on customers.customer_id = assignments.customer_id

)

select * from final
